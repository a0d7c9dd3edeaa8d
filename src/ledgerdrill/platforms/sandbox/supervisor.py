"""The sandbox's control loop: restart what crashed, reschedule what lost its node.

Modelled on Kubernetes: a crashed program on a healthy node is restarted there with
a back-off (``restartPolicy: Always``); when a node has been down or hung for longer
than the eviction timeout, its reschedulable replicas are started on a surviving
node of the same region, preferring another zone; when the node comes back, the
replica returns home and its stand-in is stopped -- so a drill leaves the sandbox
in the shape it found it. Every decision is an event.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.sandbox.nodes import DOWN, FROZEN, NodeProcesses
from ledgerdrill.platforms.sandbox.services import Service
from ledgerdrill.platforms.sandbox.topology import Topology

EventSink = Callable[[str, str, dict[str, Any]], None]
MAX_BACKOFF_S = 2.0


@dataclass
class _Health:
    lost_since: float | None = None  # monotonic seconds when the node was first seen lost
    next_restart_at: float = 0.0
    backoff_s: float = 0.0


@dataclass
class Supervisor:
    topology: Topology
    services: Sequence[Service]
    on_event: EventSink
    eviction_timeout_s: float = 5.0
    interval_s: float = 0.1
    # pinned services that need more than a restart when their node returns (a database
    # member rejoining as a standby): called instead of ``Service.start``
    restore_hooks: dict[str, Callable[[Service], None]] = field(default_factory=dict)
    _nodes: dict[str, _Health] = field(default_factory=dict)
    _services: dict[str, _Health] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    paused: bool = False
    _pass: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """No reconcile pass runs inside: for changes made on purpose (a rolling restart)
        that the loop would otherwise "repair" half-way."""
        with self._pass:
            yield

    def node_lost(self, node: str) -> bool:
        """Down (crashed, powered off) or hung (frozen): Kubernetes would call it NotReady."""
        folder = self.services[0].state_dir / "nodes" / node if self.services else None
        if folder is None:
            return False
        return (folder / DOWN).exists() or (folder / FROZEN).exists()

    def reconcile(self, now: float | None = None) -> None:
        """One pass of the loop (tests call it directly)."""
        if self.paused:
            return
        with self._pass:
            self._reconcile(time.monotonic() if now is None else now)

    def _reconcile(self, now: float) -> None:
        for spec in self.topology.nodes:
            health = self._nodes.setdefault(spec.name, _Health())
            lost = self.node_lost(spec.name)
            if lost and health.lost_since is None:
                health.lost_since = now
                self.on_event("supervisor.node-lost", spec.name, {})
            elif not lost and health.lost_since is not None:
                health.lost_since = None
                self.on_event("supervisor.node-ready", spec.name, {})
        for service in self.services:
            self._reconcile_service(service, now)

    def _reconcile_service(self, service: Service, now: float) -> None:
        health = self._services.setdefault(service.name, _Health())
        home_lost = self.node_lost(service.home_node)
        # 1. home is back: a rescheduled replica returns home, its stand-in stops. A
        #    thawed original (the node was only hung) is adopted instead of restarted.
        if service.evicted_from and not home_lost:
            stand_in = service.node
            service.stop()
            service.evicted_from = None
            service.node = service.home_node
            adopted = service.alive()
            if adopted:
                service.port = service.home_port
                # the stand-in's port is gone: whoever routes to the service must learn
                # the original's again (start() says so itself; adopting did not, and
                # Traefik kept the stopped stand-in's port: the replica out of rotation
                # after every node-freeze, unseen until a second drill met no impact)
                if service.on_started is not None:
                    service.on_started(service)
            else:
                service.start(service.home_node)
            self.on_event(
                "supervisor.returned-home",
                service.name,
                {"from": stand_in, "to": service.home_node, "adopted": adopted},
            )
            return
        # 2. its node is lost: nothing runs there; evict after the timeout
        if self.node_lost(service.node):
            lost_since = self._nodes[service.node].lost_since or now
            if service.reschedulable and now - lost_since >= self.eviction_timeout_s:
                target = self._place(service)
                if target is not None:
                    old = service.node
                    service.evicted_from = old
                    service.home_port = service.port
                    service.start(target)
                    self.on_event(
                        "supervisor.rescheduled",
                        service.name,
                        {"from": old, "to": target, "after_s": round(now - lost_since, 2)},
                    )
            return
        # 3. healthy node, dead program: restart with back-off
        if service.alive():
            health.backoff_s = 0.0
            return
        if now < health.next_restart_at:
            return
        hook = self.restore_hooks.get(service.name)
        try:
            (hook or (lambda s: s.start()))(service)
        except Exception as exc:  # a failed start is retried after the back-off
            self.on_event("supervisor.start-failed", service.name, {"error": str(exc)})
        else:
            service.restarts += 1
            self.on_event(
                "supervisor.restarted",
                service.name,
                {"node": service.node, "count": service.restarts},
            )
        health.backoff_s = min(MAX_BACKOFF_S, max(0.2, health.backoff_s * 2))
        health.next_restart_at = now + health.backoff_s

    def _place(self, service: Service) -> str | None:
        """A surviving node of the same region with the same role, another zone first."""
        home = self.topology.node(service.home_node)
        candidates = [
            n
            for n in self.topology.nodes
            if n.region == home.region
            and n.name != service.node
            and set(n.roles) & set(home.roles)
            and not self.node_lost(n.name)
            and NodeProcesses(service.state_dir, n.name).state() is not NodeState.FROZEN
        ]
        candidates.sort(key=lambda n: (n.zone == home.zone, n.name))
        return candidates[0].name if candidates else None

    # -- the thread --------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.reconcile()
            except Exception as exc:  # the loop must survive anything one pass hits
                self.on_event("supervisor.error", "reconcile", {"error": repr(exc)})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
