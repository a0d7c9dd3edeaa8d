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
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ledgerdrill.errors import PlatformError, UnsupportedCapability
from ledgerdrill.platforms.base import (
    CertificateInfo,
    DatabaseMember,
    DatabaseTopology,
    LinkMeasurement,
    LinkState,
    NodeInfo,
    NodeState,
    Platform,
    ReleaseInfo,
)
from ledgerdrill.timeline import Sample, Timeline

C = TypeVar("C")


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
        capabilities: Sequence[str] | None = None,
        entry_url: str | None = None,
    ) -> None:
        super().__init__(name)
        self.entry_url = entry_url
        self.offered = None if capabilities is None else set(capabilities)
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

    def probe_facts(self) -> dict[str, Any]:
        """With an ``entry_url`` (a test's ERP), what a load run needs; else nothing."""
        if self.entry_url is None:
            return {}
        return {"entry_url": self.entry_url, "database": "fake", "login": "fake",
                "password": "fake-password"}  # fmt: skip

    def capability(self, protocol: type[C]) -> C:
        if self.offered is not None and protocol.__name__ not in self.offered:
            raise UnsupportedCapability(self.kind, protocol.__name__, "not offered by this target")
        return super().capability(protocol)

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

    # -- DatabaseControl ---------------------------------------------------------------
    def _db(self, state: dict[str, Any]) -> dict[str, Any]:
        """A primary on the first node and a synchronous standby on the second."""
        if "database" not in state:
            first, second = list(self._zones)[:2]
            state["database"] = {
                "members": {
                    f"db-{self._zones[first]}": {"node": first, "role": "primary"},
                    f"db-{self._zones[second]}": {"node": second, "role": "sync-standby"},
                },
                "app": f"db-{self._zones[first]}",
                "restores": 0,
                "rows": 100,
            }
        db: dict[str, Any] = state["database"]
        return db

    def database_topology(self) -> DatabaseTopology:
        with self._state() as state:
            db = self._db(state)
        return DatabaseTopology(
            tuple(
                DatabaseMember(name, m["node"], m["role"])
                for name, m in sorted(db["members"].items())
            )
        )

    def crash_primary(self) -> str:
        with self._state() as state:
            db = self._db(state)
            old = next(n for n, m in db["members"].items() if m["role"] == "primary")
            db["members"][old]["role"] = "stopped"
            standby = next(
                (n for n, m in db["members"].items() if m["role"] == "sync-standby"), None
            )
            if standby:  # the fake's HA promotes at once
                db["members"][standby]["role"] = "primary"
                db["app"] = standby
            state["log"].append([time.time(), old, "db-crashed"])
        return str(old)

    def switchover(self, to_member: str | None = None) -> str:
        with self._state() as state:
            db = self._db(state)
            old = next(n for n, m in db["members"].items() if m["role"] == "primary")
            new = to_member or next(
                n for n, m in db["members"].items() if m["role"] == "sync-standby"
            )
            db["members"][old]["role"] = "sync-standby"
            db["members"][new]["role"] = "primary"
            db["app"] = new
        return str(new)

    def rejoin(self, member: str) -> None:
        with self._state() as state:
            db = self._db(state)
            if db["members"][member]["role"] == "stopped":
                db["members"][member]["role"] = "sync-standby"
                state["log"].append([time.time(), member, "db-rejoined"])

    def run_bad_change(self, sql: str) -> int:
        with self._state() as state:
            db = self._db(state)
            affected = int(db["rows"])
            db["rows"] = 0
            state["log"].append([time.time(), "ledger", f"bad change: {sql}"])
        return affected

    def database_time_iso(self) -> str:
        return datetime.now(UTC).isoformat()

    def restore_to_point_in_time(self, point_in_time_iso: str) -> str:
        with self._state() as state:
            db = self._db(state)
            # named for the point, like every real backend: the same point, the same server
            name = "restored-" + "".join(c for c in point_in_time_iso if c.isdigit())[:14]
            if name not in db["members"]:
                db["restores"] += 1
            db["members"][name] = {"node": "restore", "role": "standalone"}
            db["rows"] = 100
            state["log"].append([time.time(), name, f"restored to {point_in_time_iso}"])
        return name

    def switch_application_database(self, member: str) -> None:
        with self._state() as state:
            self._db(state)["app"] = member

    def application_database(self) -> str:
        with self._state() as state:
            return str(self._db(state)["app"])

    def settle(self) -> list[str]:
        """As the sandbox does: the restored server the application uses becomes the
        HA pair's data again (the primary takes it over), other restored servers go."""
        done = []
        with self._state() as state:
            db = self._db(state)
            restored = [n for n, m in db["members"].items() if m["role"] == "standalone"]
            primary = next(n for n, m in db["members"].items() if m["role"] == "primary")
            for name in restored:
                del db["members"][name]
                if db["app"] == name:
                    db["app"] = primary
                    done.append(f"restored server {name} adopted as the HA cluster's data")
                else:
                    done.append(f"orphaned restored server {name} removed")
        return done

    def ledger_rows(self) -> int:
        with self._state() as state:
            return int(self._db(state)["rows"])

    # -- CertificateControl -------------------------------------------------------------
    def _certs(self, state: dict[str, Any]) -> dict[str, Any]:
        certs: dict[str, Any] = state.setdefault(
            "certificate", {"variant": "valid", "serial": 1, "backups": {}}
        )
        return certs

    def served_certificate(self) -> CertificateInfo:
        with self._state() as state:
            certs = self._certs(state)
        return CertificateInfo(
            subject="CN=fake", not_after_iso="2027-01-01T00:00:00+00:00",
            fingerprint_sha256=f"serial-{certs['serial']}", variant=certs["variant"],
        )  # fmt: skip

    def backup_certificate(self) -> str:
        with self._state() as state:
            certs = self._certs(state)
            ref = f"backup-{len(certs['backups']) + 1}"
            certs["backups"][ref] = {"variant": certs["variant"], "serial": certs["serial"]}
        return ref

    def install_certificate(self, variant: str) -> None:
        with self._state() as state:
            certs = self._certs(state)
            certs["variant"], certs["serial"] = variant, certs["serial"] + 1

    def restore_certificate(self, backup_ref: str) -> None:
        with self._state() as state:
            certs = self._certs(state)
            certs.update(certs["backups"][backup_ref])

    # -- RegionControl ------------------------------------------------------------------
    def regions(self) -> Sequence[str]:
        return [self.region, "dr"]

    def region_state(self, region: str) -> NodeState:
        with self._state() as state:
            return NodeState(state.setdefault("regions", {}).get(region, "running"))

    def region_outage(self, region: str) -> None:
        with self._state() as state:
            state.setdefault("regions", {})[region] = "stopped"
            state["log"].append([time.time(), region, "region-down"])

    def restore_region(self, region: str) -> None:
        with self._state() as state:
            state.setdefault("regions", {})[region] = "running"
            state["serving_region"] = self.region

    def fail_over_to(self, region: str) -> None:
        with self._state() as state:
            state["serving_region"] = region

    # -- CacheControl -------------------------------------------------------------------
    def kill_cache(self) -> None:
        with self._state() as state:
            state["cache"] = {"alive": False, "instance": state.get("cache", {}).get("instance", 1)}

    def restore_cache(self) -> None:
        with self._state() as state:
            cache = state.setdefault("cache", {"alive": True, "instance": 1})
            if not cache["alive"]:
                cache.update(alive=True, instance=cache["instance"] + 1)

    def cache_alive(self) -> bool:
        with self._state() as state:
            return bool(state.get("cache", {}).get("alive", True))

    def cache_instance(self) -> str:
        with self._state() as state:
            return str(state.get("cache", {}).get("instance", 1))

    # -- ReleaseControl -----------------------------------------------------------------
    def current_release(self) -> ReleaseInfo:
        with self._state() as state:
            return ReleaseInfo(state.get("release", "1.0.0"), replicas=len(self._zones))

    def roll_out(self, version: str) -> ReleaseInfo:
        previous = self.current_release()
        with self._state() as state:
            state["release"] = version
        return previous

    def roll_back(self, to_version: str) -> None:
        with self._state() as state:
            state["release"] = to_version

    def default_probes(self) -> list[Any]:
        return [FakeServiceProbe(self)]

    # -- NetworkControl -----------------------------------------------------------------
    # links between the fake's parts; a round trip "measured" here is computed from the
    # link's state (0.3 ms clean, twice the latency, a 200 ms retransmission for every
    # other trip when lossy, refused when cut): the fault's own lifecycle is what the
    # fake tests, the real measurement is the sandbox's (platforms/sandbox/network.py)
    FAKE_LINKS = ("erp>db-a", "db-b>db-a")

    def links(self) -> list[str]:
        return list(self.FAKE_LINKS)

    def link_state(self, name: str) -> LinkState:
        if name not in self.FAKE_LINKS:
            raise PlatformError(f"no link {name!r}")
        with self._state() as state:
            return LinkState(**{"name": name, **state.get("links", {}).get(name, {})})

    def set_link(self, state: LinkState) -> None:
        with self._state() as saved:
            fields = {k: v for k, v in asdict(state).items() if k != "name"}
            saved.setdefault("links", {})[state.name] = fields

    def measure_link(self, name: str, count: int) -> LinkMeasurement:
        link = self.link_state(name)
        if link.cut:
            return LinkMeasurement((), count, count)
        trips = tuple(
            0.3 + 2 * link.latency_ms + (200.0 if link.loss_percent and i % 2 == 0 else 0.0)
            for i in range(count)
        )
        return LinkMeasurement(trips, 0, count)

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
