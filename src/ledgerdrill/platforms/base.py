"""The platform interface: one backend, exposing capability protocols.

A scenario asks a platform for a capability (``platform.capability(NodeControl)``);
a backend without it raises ``UnsupportedCapability`` and the scenario skips with
that reason (or fails when the user required the platform).  Faults talk only to
these protocols, so a new backend is a new module passing the same contract tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

from ledgerdrill.errors import UnsupportedCapability


class NodeState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # crashed / powered off
    FROZEN = "frozen"  # hung: processes stopped, still "there"
    DRAINED = "drained"  # cordoned, workloads moved away


@dataclass(frozen=True)
class NodeInfo:
    name: str
    zone: str
    region: str
    roles: tuple[str, ...] = ()
    state: NodeState = NodeState.RUNNING
    protected: bool = False  # e.g. a control-plane node: never touched


@dataclass(frozen=True)
class DatabaseMember:
    name: str
    node: str
    role: str  # "primary" | "sync-standby" | "async-replica" | "stopped"
    timeline: int = 0
    lag_bytes: int | None = None
    # a standby's replication connection is up and streaming (read from the primary's
    # replication view, or the operator's status); None: the backend cannot tell
    streaming: bool | None = None


@dataclass(frozen=True)
class DatabaseTopology:
    members: tuple[DatabaseMember, ...]

    @property
    def primary(self) -> DatabaseMember | None:
        return next((m for m in self.members if m.role == "primary"), None)


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    not_after_iso: str
    fingerprint_sha256: str
    variant: str = "valid"  # "valid" | "expired" | "none" (the server's default certificate)


@dataclass(frozen=True)
class ReleaseInfo:
    version: str
    replicas: int = 0
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class NodeControl(Protocol):
    def nodes(self) -> Sequence[NodeInfo]: ...
    def crash_node(self, name: str) -> None: ...
    def freeze_node(self, name: str) -> None: ...
    def drain_node(self, name: str) -> None: ...
    def restore_node(self, name: str) -> None:
        """Undo crash, freeze or drain; idempotent."""
        ...

    def node_state(self, name: str) -> NodeState: ...


@runtime_checkable
class ZoneControl(Protocol):
    def zones(self) -> Sequence[str]: ...
    def nodes_in_zone(self, zone: str) -> Sequence[str]: ...


@runtime_checkable
class ZoneOutageControl(Protocol):
    """Optional: a backend that takes a whole zone down in one operation (one cloud API
    call per node group) instead of node after node. ``ZoneOutage`` uses it when offered;
    the nodes it stops are still ``nodes_in_zone(zone)``, so verify is unchanged."""

    def zone_outage(self, zone: str) -> None: ...
    def restore_zone(self, zone: str) -> None:
        """Bring every node of the zone back and wait until they serve; idempotent."""
        ...


@runtime_checkable
class DatabaseControl(Protocol):
    def database_topology(self) -> DatabaseTopology: ...
    def crash_primary(self) -> str:
        """Kill the primary's server; return the member name that was killed."""
        ...

    def switchover(self, to_member: str | None = None) -> str: ...
    def rejoin(self, member: str) -> None:
        """Bring a former primary back as a standby (pg_rewind or equivalent); idempotent."""
        ...

    def run_bad_change(self, sql: str) -> int:
        """Run a damaging statement on the primary (a failed deployment); rows affected."""
        ...

    def database_time_iso(self) -> str:
        """The database server's clock (a restore point must be in its time)."""
        ...

    def restore_to_point_in_time(self, point_in_time_iso: str) -> str:
        """Restore into a new server from backups and WAL; return its name."""
        ...

    def switch_application_database(self, member: str) -> None:
        """Point the application at ``member`` (the runbook's last step after a restore)."""
        ...

    def application_database(self) -> str: ...


@runtime_checkable
class CertificateControl(Protocol):
    def served_certificate(self) -> CertificateInfo:
        """What clients are served right now, read from the wire (independent evidence)."""
        ...

    def backup_certificate(self) -> str:
        """Save the certificate in use; return a reference for ``restore_certificate``.
        Called before the journal write, so the undo is known before anything changes."""
        ...

    def install_certificate(self, variant: str) -> None:
        """Serve a freshly made ``valid`` or ``expired`` certificate, or ``none`` (the
        server falls back to its default certificate)."""
        ...

    def restore_certificate(self, backup_ref: str) -> None: ...


@runtime_checkable
class RegionControl(Protocol):
    def regions(self) -> Sequence[str]: ...
    def region_state(self, region: str) -> NodeState:
        """RUNNING when the region serves, STOPPED when it is lost."""
        ...

    def region_outage(self, region: str) -> None: ...
    def restore_region(self, region: str) -> None:
        """Bring the region back and, if traffic failed over, fail back to it; idempotent."""
        ...

    def fail_over_to(self, region: str) -> None:
        """The DR runbook: promote the region's database, point its replicas at it, move
        traffic there."""
        ...


@runtime_checkable
class RegionSnapshots(Protocol):
    """Optional, next to ``RegionControl``: a backend whose outage changes spec fields
    (replica counts, annotations) hands the fault the values to go back to, so they are
    in the journal before anything changes. Not a capability of its own."""

    def region_snapshot(self, region: str) -> dict[str, Any]:
        """Read (never change) what ``restore_region_from`` needs; JSON-serialisable."""
        ...

    def restore_region_from(self, region: str, snapshot: Mapping[str, Any]) -> None:
        """``restore_region`` with the journaled snapshot; idempotent."""
        ...

    def region_outage_actions(self, region: str) -> list[str]:
        """What the outage would change, one line each, for the plan (reads only)."""
        ...


@runtime_checkable
class CacheControl(Protocol):
    def kill_cache(self) -> None: ...
    def restore_cache(self) -> None:
        """Make sure a cache runs again (empty: what was in it is gone); idempotent."""
        ...

    def cache_alive(self) -> bool: ...
    def cache_instance(self) -> str:
        """An id that changes whenever the cache restarts empty (Redis ``run_id``)."""
        ...


@runtime_checkable
class ReleaseControl(Protocol):
    def current_release(self) -> ReleaseInfo: ...
    def roll_out(self, version: str) -> ReleaseInfo:
        """Roll ``version`` out to every replica; return the release it replaced."""
        ...

    def roll_back(self, to_version: str) -> None: ...


@runtime_checkable
class ServiceControl(Protocol):
    """Pause every process of one service (SIGSTOP-like: they hang, nothing restarts
    them) and resume it: a ground-truth outage of known length for measuring probes."""

    def service_nodes(self, role: str) -> Sequence[str]: ...
    def pause_service(self, role: str) -> None: ...
    def resume_service(self, role: str) -> None: ...
    def service_paused(self, role: str) -> bool: ...


@dataclass(frozen=True)
class LinkState:
    """How one network link between two parts of the platform behaves (``<from>><to>``:
    the ERP's connection to a database member, a standby's WAL stream from its primary).
    The default is a clean link."""

    name: str
    latency_ms: float = 0.0  # one way
    jitter_ms: float = 0.0  # one way, added at random
    loss_percent: float = 0.0  # share of segments lost (each costs a retransmission)
    bandwidth_kbps: float | None = None  # each way; None: unlimited
    cut: bool = False  # partitioned: nothing gets through


@dataclass(frozen=True)
class LinkMeasurement:
    """Round trips through a link to the server behind it, timed by the client: a witness
    of the link's behaviour independent of what the link says of itself."""

    round_trips_ms: tuple[float, ...]
    refused: int  # connections that did not get through (a cut link)
    attempts: int


@runtime_checkable
class NetworkControl(Protocol):
    def links(self) -> Sequence[str]: ...
    def link_state(self, name: str) -> LinkState: ...
    def set_link(self, state: LinkState) -> None:
        """Make the link behave as ``state`` says, in effect when this returns."""
        ...

    def measure_link(self, name: str, count: int) -> LinkMeasurement:
        """``count`` round trips through the link, each on a new connection."""
        ...


CAPABILITIES: tuple[type, ...] = (
    NodeControl,
    ZoneControl,
    ZoneOutageControl,
    DatabaseControl,
    CertificateControl,
    RegionControl,
    CacheControl,
    ReleaseControl,
    ServiceControl,
    NetworkControl,
)

C = TypeVar("C")


class Platform:
    """Base class of every backend.

    Subclasses set ``kind`` and implement the capability protocols they support
    (directly, or by returning helper objects from ``capability``).
    """

    kind: str = "abstract"

    def __init__(self, name: str) -> None:
        self.name = name

    def capability(self, protocol: type[C]) -> C:
        if isinstance(self, protocol):
            return self
        raise UnsupportedCapability(self.kind, protocol.__name__)

    def supports(self, protocol: type) -> bool:
        try:
            self.capability(protocol)
        except UnsupportedCapability:
            return False
        return True

    def capabilities(self) -> list[str]:
        return [p.__name__ for p in CAPABILITIES if self.supports(p)]

    def describe(self) -> dict[str, object]:
        """What the dry-run plan shows about this platform (never secrets)."""
        return {"kind": self.kind, "name": self.name, "capabilities": self.capabilities()}

    def events_between(self, start: Any, end: Any) -> list[Any]:
        """The platform's own events (``timeline.Event``) between two instants: HA
        promotions, reschedules, operations. Merged into the scenario's timeline."""
        return []

    def probe_facts(self) -> dict[str, Any]:
        """Connection facts a probe catalogue's placeholders may use (``entry_url``,
        ``ca_bundle``, ``database``, ``login``...); secrets only from the platform's own
        identity or state, never from a file in the repository."""
        return {}

    def settle(self) -> list[str]:
        """After a scenario's faults are reverted, put the platform back in its baseline
        shape where a revert alone does not (a restored database re-protected by HA).
        Not measured; returns what it did."""
        return []

    def baseline_facts(self) -> dict[str, str]:
        """Backend-specific facts the platform's shape is compared on besides what the
        capabilities read (``platforms.shape``): e.g. restored servers left running.
        Reads only; every value must read the same after a drill as before it."""
        return {}

    def database_witness_gap(self) -> str:
        """Why this backend cannot give the database's own account of a promotion's data
        loss (``measure/db_loss.py``), or ``""`` when it emits it. The default: it cannot,
        and the canary stands alone."""
        return (
            f"the {self.kind} backend does not read the database's account of a promotion;"
            " the canary stands alone"
        )

    def default_probes(self) -> list[Any]:
        """Probes to use when the target names no probe catalogue (a list of ``Probe``)."""
        return []

    def close(self) -> None:
        """Release connections; a no-op unless the backend holds some."""
