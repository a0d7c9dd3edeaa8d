"""``AzurePlatform``: AKS nodes and zones through VM scale sets, PostgreSQL Flexible
Server failover, point-in-time and geo-restore, DR replica promotion.

Capabilities from Azure: NodeControl (crash = power off with skip_shutdown; freeze
and drain are not Azure operations), ZoneControl and ZoneOutageControl (one call per
scale set), DatabaseControl (when the target names a database), RegionControl (when
it names a dr cluster and a database). Composed with a ``KubernetesPlatform`` for the
cluster's kubeconfig context (``platform.kubernetes`` in the target), it also offers
that backend's CertificateControl, CacheControl and ReleaseControl, and reads node
listing and Ready evidence through it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ledgerdrill.errors import LedgerdrillError, UnsupportedCapability
from ledgerdrill.platforms.azure.compute import ScaleSets
from ledgerdrill.platforms.azure.database_ops import (
    AzureDatabaseOps,
    ConnectionSwitch,
    SqlRunner,
)
from ledgerdrill.platforms.azure.ids import Scope
from ledgerdrill.platforms.azure.lro import EventSink, OperationJournal, OperationRunner
from ledgerdrill.platforms.azure.node_ops import AzureNodeOps
from ledgerdrill.platforms.azure.nodes import NodeSource
from ledgerdrill.platforms.azure.postgres import FlexibleServers
from ledgerdrill.platforms.azure.region_ops import AzureRegionOps
from ledgerdrill.platforms.azure.state import PlatformState
from ledgerdrill.platforms.base import (
    CacheControl,
    CertificateControl,
    DatabaseControl,
    Platform,
    RegionControl,
    ReleaseControl,
    ServiceControl,
)
from ledgerdrill.targets import AzurePlatformSettings
from ledgerdrill.timeline import Clock, Event, Instant, SystemClock

C = TypeVar("C")

# what the Kubernetes backend of the AKS cluster provides in a composed target
FROM_KUBERNETES: tuple[type, ...] = (CertificateControl, CacheControl, ReleaseControl)

__all__ = ["AzurePlatform", "ConnectionSwitch", "SqlRunner"]


class AzurePlatform(AzureNodeOps, AzureDatabaseOps, AzureRegionOps, Platform):
    kind = "azure"

    def __init__(
        self,
        name: str,
        settings: AzurePlatformSettings,
        *,
        compute_client: Any,
        postgres_client: Any | None,
        node_source: NodeSource,
        state_dir: Path,
        clock: Clock | None = None,
        on_event: EventSink | None = None,
        connection_switch: ConnectionSwitch | None = None,
        sql_runner: SqlRunner | None = None,
        kubernetes: Platform | None = None,
        endpoint_note: str | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self.node_source = node_source
        self.state_dir = state_dir
        self.state = PlatformState(state_dir / "state.json")
        self.clock = clock or SystemClock()
        self.connection_switch = connection_switch
        self.sql_runner = sql_runner
        self.kubernetes = kubernetes
        self.endpoint_note = endpoint_note
        self._listener = on_event
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self.scope = Scope.of(settings.subscription_id, settings.allowed_resource_groups)
        clients = {"compute": compute_client, "postgres": postgres_client}
        self.operations = OperationJournal(state_dir / "operations.jsonl")
        self.runner = OperationRunner(
            clients, self.operations, self.clock, self._record, check_every_s=0.05
        )
        self.scale_sets = ScaleSets(compute_client, self.runner, self.scope)
        self.servers: FlexibleServers | None = None
        if settings.database is not None and postgres_client is not None:
            self.servers = FlexibleServers(
                postgres_client,
                self.runner,
                self.scope,
                subscription_id=settings.subscription_id,
                settings=settings.database,
                clock=self.clock,
                failover_timeout_s=settings.failover_timeout,
                restore_timeout_s=settings.restore_timeout,
                poll_s=settings.polling_interval,
            )

    # -- events --------------------------------------------------------------------
    def _record(self, kind: str, name: str, attributes: Mapping[str, Any]) -> None:
        event = Event(kind, name, self.clock.now(), dict(attributes))
        with self._lock:
            self._events.append(event)
        if self._listener is not None:
            self._listener(kind, name, attributes)

    def events_between(self, start: Any, end: Any) -> list[Any]:
        with self._lock:
            events = list(self._events)
        if self.kubernetes is not None:
            events += self.kubernetes.events_between(start, end)
        return [
            e
            for e in events
            if (not isinstance(start, Instant) or e.at.mono_ns >= start.mono_ns)
            and (not isinstance(end, Instant) or e.at.mono_ns <= end.mono_ns)
        ]

    # -- capabilities --------------------------------------------------------------
    def capability(self, protocol: type[C]) -> C:
        if protocol in FROM_KUBERNETES:
            if self.kubernetes is None:
                raise UnsupportedCapability(
                    self.kind,
                    protocol.__name__,
                    "comes from the AKS cluster's Kubernetes API: set platform.kubernetes "
                    "(kubeconfig context) in the target",
                )
            return self.kubernetes.capability(protocol)
        if protocol is ServiceControl:
            raise UnsupportedCapability(
                self.kind, "ServiceControl", "pausing one service's processes has no Azure API"
            )
        if protocol is DatabaseControl and self.servers is None:
            raise UnsupportedCapability(
                self.kind, "DatabaseControl", "the target names no PostgreSQL Flexible Server"
            )
        if protocol is RegionControl and not self._has_dr():
            raise UnsupportedCapability(
                self.kind,
                "RegionControl",
                "the target needs dr_cluster and a database (with a dr_replica, or "
                "geo-redundant backups for a geo-restore) for regional DR",
            )
        return super().capability(protocol)

    def _has_dr(self) -> bool:
        return self.settings.dr_cluster is not None and self.servers is not None

    # -- plan ----------------------------------------------------------------------
    def database_witness_gap(self) -> str:
        # the Flexible Server ARM API (servers, replicas: state, replicationRole,
        # replicaCapacity) reports no replay position or commit time of a promoted
        # replica; the database would have to be asked in SQL
        return (
            "Azure Resource Manager reports no replay position or commit time for a promoted"
            " Flexible Server replica; reading them needs a SQL connection to the server"
            " (not made by this backend); the canary stands alone"
        )

    def describe(self) -> dict[str, object]:
        """The dry-run inventory: every scale-set instance per region and zone, and the
        database servers a failover, restore or promotion would act on (reads only)."""
        plan: dict[str, object] = {
            **super().describe(),
            "subscription": self.settings.subscription_id,
            "resource_groups": list(self.settings.allowed_resource_groups),
        }
        if self.endpoint_note:
            plan["arm_endpoint"] = self.endpoint_note
        lines: list[str] = []
        try:
            regions: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
            mapped = self._mapped()
            for info in self.nodes():
                ref = mapped[info.name][1]
                regions[info.region][info.zone or "no zone"].append(
                    f"{ref.scale_set.vmss}/{ref.instance_id} (node {info.name}, {info.state})"
                )
            plan["regions"] = {r: dict(sorted(z.items())) for r, z in sorted(regions.items())}
        except LedgerdrillError as exc:
            plan["regions"] = f"unavailable: {exc}"
            lines.append(f"scale-set instances unavailable: {exc}")
        if self.servers is not None:
            lines += self._describe_database(self.servers)
        plan["plan_lines"] = lines
        if self.kubernetes is not None:
            described = self.kubernetes.describe()
            plan["kubernetes"] = {
                "context": described.get("context"),
                "namespace": described.get("namespace"),
                "provides": [p.__name__ for p in FROM_KUBERNETES if self.kubernetes.supports(p)],
            }
        return plan

    def _describe_database(self, db: FlexibleServers) -> list[str]:
        settings = db.settings
        lines = []
        try:
            main = db.primary()
            standby = f"standby {main.standby_member}" if main.standby_member else "no standby"
            lines.append(
                f"database server {main.name} ({main.location}, HA {main.ha_mode} "
                f"{main.ha_state}): primary {main.primary_member}, {standby}; a failover "
                f"is {settings.failover_mode}, a switchover {settings.switchover_mode}"
            )
            replica = db.replica()
            if replica is not None:
                lines.append(
                    f"dr replica {replica.name} ({replica.location}, {replica.replication_role})"
                    f": promoted with {settings.promote_mode}/{settings.promote_option}"
                )
            elif self.settings.dr_cluster is not None:
                lines.append(
                    f"no dr replica: regional DR geo-restores {main.name} into "
                    f"{self.settings.dr_cluster.region}"
                )
            if settings.virtual_endpoint:
                endpoint = db.endpoints.read(settings.virtual_endpoint)
                lines.append(
                    f"virtual endpoint {endpoint.writer_host} (members "
                    f"{', '.join(endpoint.members)}): the ERP keeps this host on promotion"
                )
        except LedgerdrillError as exc:
            lines.append(f"database {settings.server} unavailable: {exc}")
        return lines

    def probe_facts(self) -> dict[str, Any]:
        """The Kubernetes backend's facts (entry URL, namespace, the ERP's database name
        ``database``), plus the Flexible Server the ERP uses: ``database_server`` and the
        host it connects to, ``database_host`` (the writer endpoint's, when it has one)."""
        facts = dict(self.kubernetes.probe_facts()) if self.kubernetes is not None else {}
        if self.servers is not None:
            server = self.application_database()
            facts["database_server"] = server
            facts["database_host"] = self.servers.writer_host_for(server) or (
                self._view_of(server).fqdn
            )
        return facts

    def close(self) -> None:
        for client in (self.scale_sets.client, self.servers.client if self.servers else None):
            close: Callable[[], None] | None = getattr(client, "close", None)
            if callable(close):
                close()
        close_source: Callable[[], None] | None = getattr(self.node_source, "close", None)
        if callable(close_source):
            close_source()
        if self.kubernetes is not None:
            self.kubernetes.close()
