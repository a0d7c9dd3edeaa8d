"""The sandbox put together: its components in start order, the supervisor, the control
API's operations, and the status ``ledgerdrill sandbox status`` shows.

Start order follows dependencies: the database (the ERP creates its schema there),
Redis (sessions), the ERP replicas, then Traefik in front of them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ledgerdrill.platform_events import EventLog
from ledgerdrill.platforms.sandbox.api import ControlApi, Operation
from ledgerdrill.platforms.sandbox.certs import SandboxCA
from ledgerdrill.platforms.sandbox.component import Component
from ledgerdrill.platforms.sandbox.db_component import DatabaseComponent
from ledgerdrill.platforms.sandbox.erp_component import ADMIN_LOGIN, ErpComponent
from ledgerdrill.platforms.sandbox.links import Links, wan_between_regions
from ledgerdrill.platforms.sandbox.nodes import DOWN, FROZEN, NodeProcesses
from ledgerdrill.platforms.sandbox.operations import edge_operations, release_operations
from ledgerdrill.platforms.sandbox.postgres.credentials import APP_DATABASE
from ledgerdrill.platforms.sandbox.procs import read_pid
from ledgerdrill.platforms.sandbox.redis_component import RedisComponent
from ledgerdrill.platforms.sandbox.supervisor import Supervisor
from ledgerdrill.platforms.sandbox.topology import Topology, default_topology
from ledgerdrill.platforms.sandbox.traefik import TraefikComponent
from ledgerdrill.processes import pid_alive
from ledgerdrill.targets import SandboxPlatformSettings


@dataclass
class Assembly:
    topology: Topology
    database: DatabaseComponent
    cache: RedisComponent
    erp: ErpComponent
    edge: TraefikComponent
    supervisor: Supervisor
    events: EventLog
    api: ControlApi | None = None
    other_caches: list[RedisComponent] = field(default_factory=list)  # other regions'
    extra_status: dict[str, Any] = field(default_factory=dict)

    @property
    def components(self) -> list[Component]:
        return [self.database, self.cache, *self.other_caches, self.erp, self.edge]

    def update_backends(self) -> None:
        """Tell Traefik where the replicas listen now (a stand-in has its own port)."""
        if self.edge.running:
            self.edge.set_backends(*self.erp.backend_urls(self.topology))

    def operations(self) -> dict[str, Operation]:
        ops: dict[str, Operation] = {"sandbox/status": lambda _p: self.status("ready")}
        ops.update(self.database.operations(lambda _dsn: self.erp.reconfigure()))
        ops.update(edge_operations(self.edge, self.cache, self.events))
        ops.update(release_operations(self.erp, self.events))
        return ops

    def start_api(self) -> ControlApi:
        self.api = ControlApi(self.database.state_dir, self.operations())
        self.api.start()
        return self.api

    # -- status --------------------------------------------------------------------------
    def status(self, phase: str, **extra: Any) -> dict[str, Any]:
        ports = self._ports()
        state_dir = self.database.state_dir
        nodes = []
        for spec in self.topology.nodes:
            folder = state_dir / "nodes" / spec.name
            processes = []
            for pid_file in sorted(folder.glob("*.pid")):
                pid = read_pid(pid_file)
                alive = pid is not None and pid_alive(pid)
                processes.append(
                    {
                        "name": pid_file.stem,
                        "pid": pid,
                        "port": ports.get((spec.name, pid_file.stem)),
                        "state": "running" if alive else "gone",
                    }
                )
            marker = (
                "down"
                if (folder / DOWN).exists()
                else "frozen"
                if (folder / FROZEN).exists()
                else None
            )
            nodes.append(
                {
                    "name": spec.name,
                    "zone": spec.zone,
                    "region": spec.region,
                    "roles": list(spec.roles),
                    "state": marker or NodeProcesses(state_dir, spec.name).state().value,
                    "processes": processes,
                }
            )
        edge = self.edge.status()
        # Traefik stands outside the regions: shown as its own row, never a fault target
        nodes.append({
            "name": "edge", "zone": "-", "region": "global", "roles": ["entry"],
            "state": "running" if edge.get("state") == "running" else "stopped",
            "processes": [{"name": "traefik", "pid": edge.get("pid"),
                           "port": edge.get("ports", {}).get("websecure"),
                           "state": edge.get("state")}],
        })  # fmt: skip
        return {
            "phase": phase,
            **extra,
            "memory_mb": _memory_mb(),
            "entry_url": self.edge.entry_url,
            "ca_bundle": str(self.edge.ca_path),
            "database": APP_DATABASE,
            "login": ADMIN_LOGIN,
            "password": self.erp.admin_password,
            "api_key": self.erp.admin_api_key,  # JSON-2's bearer key, the same user's
            "api_url": self.api.url if self.api else None,
            "regions": {r: self.topology.zones(r) for r in self.topology.regions()},
            "nodes": nodes,
            "edge": edge,
            "postgres": self.database.status(),
            "redis": self.cache.status(),
            "erp": self.erp.status(),
        }

    def _ports(self) -> dict[tuple[str, str], int]:
        ports: dict[tuple[str, str], int] = {}
        for replica in self.erp.replicas:
            if replica.port is not None:
                ports[(replica.node, replica.name)] = replica.port
        for member, port in self.database.cluster.ports.items():
            ports[(member, "postgres")] = port  # a database member is named after its node
        for cache in (self.cache, *self.other_caches):
            if cache.port is not None:
                ports[(cache.node, cache.name)] = cache.port
        return ports


def _memory_mb() -> float:
    """Resident memory of the whole sandbox: this daemon and every process under it
    (PostgreSQL's backends included). Shared pages count once per process, so this is
    an upper bound."""
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return round(total / 2**20, 1)


def assemble(state_dir: Path, settings: SandboxPlatformSettings, events: EventLog) -> Assembly:
    topology = default_topology()
    database = DatabaseComponent(
        state_dir, topology, events, detection_window_s=settings.ha_detection_window,
        links=Links(state_dir, wan_between_regions(topology, settings.cross_region_round_trip))
        if settings.network_links else None,
    )  # fmt: skip
    caches = {
        spec.region: RedisComponent(
            state_dir,
            spec.name,
            name="redis" if spec.region == "primary" else f"redis-{spec.region}",
        )
        for spec in topology.with_role("cache")
    }
    cache = caches["primary"]
    erp = ErpComponent(
        state_dir,
        topology,
        replicas_per_node=settings.erp_replicas_per_node,
        dsn=database.app_dsn,
        redis_url=lambda region: caches[region].url if region in caches else None,
    )
    edge = TraefikComponent(state_dir, SandboxCA(state_dir / "ca"), style=settings.entry_point)
    supervisor = Supervisor(
        topology,
        [*(s for c in caches.values() for s in c.services()), *erp.services()],
        events.append,
        eviction_timeout_s=settings.eviction_timeout,
    )
    assembly = Assembly(topology, database, cache, erp, edge, supervisor, events)
    assembly.other_caches = [c for region, c in caches.items() if region != "primary"]
    erp.hold_supervisor = supervisor.hold
    erp.on_backends_changed = assembly.update_backends
    edge.initial_backends = lambda: erp.backend_urls(topology)
    return assembly
