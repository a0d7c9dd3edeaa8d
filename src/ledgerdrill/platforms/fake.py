"""``FakePlatform``: an in-memory backend for the harness's own tests.

Its state lives in a JSON file (guarded by ``flock``) so that a fault injected
by one process -- later SIGKILLed -- can be seen and reverted by ``ledgerdrill
cleanup`` in another. ``heal_after_s`` models self-healing: a crashed or frozen
node reports running again after that long, as an orchestrator would restart it.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import NodeInfo, NodeState, Platform
from ledgerdrill.timeline import Sample, Timeline


class FakePlatform(Platform):
    kind = "fake"

    def __init__(
        self,
        name: str,
        state_file: Path,
        nodes: Mapping[str, str],
        *,
        heal_after_s: float | None = None,
        region: str = "primary",
    ) -> None:
        super().__init__(name)
        self.state_file = state_file
        self.heal_after_s = heal_after_s
        self.region = region
        self._zones = dict(nodes)
        with self._state() as state:
            for node in nodes:
                state["nodes"].setdefault(node, {"state": "running", "since": time.time()})

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_file, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read()
            state: dict[str, Any] = json.loads(text) if text.strip() else {"nodes": {}, "log": []}
            yield state
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(state, indent=1))

    def _set(self, node: str, new: NodeState) -> None:
        if node not in self._zones:
            raise PlatformError(f"fake platform has no node {node!r}")
        with self._state() as state:
            state["nodes"][node] = {"state": str(new), "since": time.time()}
            state["log"].append([time.time(), node, str(new)])

    # -- NodeControl -----------------------------------------------------------------
    def nodes(self) -> Sequence[NodeInfo]:
        return [
            NodeInfo(name, zone, self.region, ("worker",), self.node_state(name))
            for name, zone in self._zones.items()
        ]

    def node_state(self, name: str) -> NodeState:
        with self._state() as state:
            entry = state["nodes"].get(name)
        if entry is None:
            raise PlatformError(f"fake platform has no node {name!r}")
        current = NodeState(entry["state"])
        healed = (
            self.heal_after_s is not None
            and current in (NodeState.STOPPED, NodeState.FROZEN)
            and time.time() - float(entry["since"]) >= self.heal_after_s
        )
        return NodeState.RUNNING if healed else current

    def crash_node(self, name: str) -> None:
        self._set(name, NodeState.STOPPED)

    def freeze_node(self, name: str) -> None:
        self._set(name, NodeState.FROZEN)

    def drain_node(self, name: str) -> None:
        self._set(name, NodeState.DRAINED)

    def restore_node(self, name: str) -> None:
        self._set(name, NodeState.RUNNING)

    # -- ZoneControl -----------------------------------------------------------------
    def zones(self) -> Sequence[str]:
        return sorted(set(self._zones.values()))

    def nodes_in_zone(self, zone: str) -> Sequence[str]:
        return [n for n, z in self._zones.items() if z == zone]

    def default_probes(self) -> list[Any]:
        return [FakeServiceProbe(self)]

    def history(self) -> list[tuple[float, str, str]]:
        """Every state change ever made, for tests that check what really happened."""
        with self._state() as state:
            return [(float(t), str(n), str(s)) for t, n, s in state["log"]]


class FakeServiceProbe:
    """Healthy while every node of the fake platform is running."""

    name = "fake-service"
    counts_for_rto = True

    def __init__(self, platform: FakePlatform) -> None:
        self.platform = platform

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        down = [n.name for n in self.platform.nodes() if n.state is not NodeState.RUNNING]
        took = timeline.clock.now().seconds_since(start)
        detail = f"nodes not running: {', '.join(down)}" if down else "all nodes running"
        return Sample(self.name, start, not down, took, detail)
