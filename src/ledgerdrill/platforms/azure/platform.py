"""``AzurePlatform``: AKS nodes and zones through VM scale sets, PostgreSQL Flexible
Server failover, point-in-time restore and DR replica promotion.

Capabilities: NodeControl (crash = power off with skip_shutdown; freeze and drain are
not Azure operations), ZoneControl, DatabaseControl (when the target names a
database), RegionControl (when it names a dr cluster and a dr replica).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

from ledgerdrill.errors import FaultError, PlatformError, SafetyViolation, UnsupportedCapability
from ledgerdrill.platforms.azure.compute import InstanceState, ScaleSets
from ledgerdrill.platforms.azure.ids import InstanceRef, ScaleSetRef, Scope, parse_provider_id
from ledgerdrill.platforms.azure.lro import EventSink, OperationJournal, OperationRunner
from ledgerdrill.platforms.azure.nodes import AksNode, NodeSource, arm_zone
from ledgerdrill.platforms.azure.postgres import FlexibleServers
from ledgerdrill.platforms.base import (
    DatabaseControl,
    DatabaseTopology,
    NodeInfo,
    NodeState,
    Platform,
    RegionControl,
)
from ledgerdrill.targets import AzureClusterSettings, AzurePlatformSettings
from ledgerdrill.timeline import Clock, Event, Instant, SystemClock

C = TypeVar("C")
ConnectionSwitch = Callable[[str, str], None]  # (server name, fully qualified host name)
SqlRunner = Callable[[str], int]


class AzurePlatform(Platform):
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
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self.node_source = node_source
        self.state_dir = state_dir
        self.clock = clock or SystemClock()
        self.connection_switch = connection_switch
        self.sql_runner = sql_runner
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
        return [
            e
            for e in events
            if (not isinstance(start, Instant) or e.at.mono_ns >= start.mono_ns)
            and (not isinstance(end, Instant) or e.at.mono_ns <= end.mono_ns)
        ]

    # -- capabilities --------------------------------------------------------------
    def capability(self, protocol: type[C]) -> C:
        if protocol is DatabaseControl and self.servers is None:
            raise UnsupportedCapability(
                self.kind, "DatabaseControl", "the target names no PostgreSQL Flexible Server"
            )
        if protocol is RegionControl and not self._has_dr():
            raise UnsupportedCapability(
                self.kind,
                "RegionControl",
                "the target needs dr_cluster and database.dr_replica for regional DR",
            )
        return super().capability(protocol)

    def _has_dr(self) -> bool:
        db = self.settings.database
        return self.settings.dr_cluster is not None and db is not None and bool(db.dr_replica)

    def _db(self) -> FlexibleServers:
        if self.servers is None:
            raise UnsupportedCapability(self.kind, "DatabaseControl", "no database configured")
        return self.servers

    # -- node mapping --------------------------------------------------------------
    def _clusters(self) -> list[AzureClusterSettings]:
        return [c for c in (self.settings.cluster, self.settings.dr_cluster) if c is not None]

    def _cluster_of(self, ref: InstanceRef) -> AzureClusterSettings:
        for cluster in self._clusters():
            if ref.scale_set.resource_group == cluster.node_resource_group.lower() and (
                not cluster.scale_sets or ref.scale_set.vmss in cluster.scale_sets
            ):
                return cluster
        raise SafetyViolation(
            f"scale set {ref.scale_set.vmss} in {ref.scale_set.resource_group} belongs to "
            "no cluster of the target; refused before any call"
        )

    def _mapped(self) -> dict[str, tuple[AksNode, InstanceRef]]:
        out = {}
        for node in self.node_source.list_nodes():
            ref = parse_provider_id(node.provider_id)
            out[node.name] = (node, ref)
        return out

    def _node(self, name: str) -> tuple[AksNode, InstanceRef]:
        mapped = self._mapped()
        if name not in mapped:
            raise FaultError(f"no AKS node {name!r} (nodes: {', '.join(sorted(mapped))})")
        node, ref = mapped[name]
        self.scope.check(ref.scale_set.subscription_id, ref.scale_set.resource_group, name)
        self._cluster_of(ref)
        return node, ref

    def _scale_sets(self, region: str | None = None) -> list[ScaleSetRef]:
        refs: set[ScaleSetRef] = set()
        for cluster in self._clusters():
            if region is not None and cluster.region != region:
                continue
            for vmss in cluster.scale_sets:
                refs.add(
                    ScaleSetRef(
                        self.settings.subscription_id.lower(),
                        cluster.node_resource_group.lower(),
                        vmss,
                    )
                )
        if not refs:  # no scale sets named: the ones the nodes run on
            for _, ref in self._mapped().values():
                if region is None or self._cluster_of(ref).region == region:
                    refs.add(ref.scale_set)
        return sorted(refs)

    def _instance_states(
        self, scale_sets: Sequence[ScaleSetRef]
    ) -> dict[InstanceRef, InstanceState]:
        states: dict[InstanceRef, InstanceState] = {}
        for ss in scale_sets:
            for state in self.scale_sets.instances(ss):
                states[state.ref] = state
        return states

    def _state_of(self, node: AksNode, instance: InstanceState | None) -> NodeState:
        if instance is None or not instance.running:
            return NodeState.STOPPED
        return NodeState.RUNNING if node.ready else NodeState.STOPPED

    # -- NodeControl ---------------------------------------------------------------
    def nodes(self) -> Sequence[NodeInfo]:
        mapped = self._mapped()
        states = self._instance_states(sorted({ref.scale_set for _, ref in mapped.values()}))
        infos = []
        for name, (node, ref) in sorted(mapped.items()):
            instance = states.get(ref)
            zone = instance.zones[0] if instance and instance.zones else arm_zone(node.zone)
            infos.append(
                NodeInfo(
                    name,
                    zone,
                    self._cluster_of(ref).region,
                    roles=("agent",),
                    state=self._state_of(node, instance),
                )
            )
        return infos

    def node_state(self, name: str) -> NodeState:
        node, ref = self._node(name)
        return self._state_of(node, self._instance_states([ref.scale_set]).get(ref))

    def crash_node(self, name: str) -> None:
        _, ref = self._node(name)
        self.scale_sets.act(
            "power-off",
            ref.scale_set,
            [ref.instance_id],
            f"power off (skip shutdown) node {name}",
            self.settings.operation_timeout,
        )

    def lose_node(self, name: str) -> None:
        """Node loss: deallocate (the VM gives its host back, like a hardware failure)."""
        _, ref = self._node(name)
        self.scale_sets.act(
            "deallocate",
            ref.scale_set,
            [ref.instance_id],
            f"deallocate node {name}",
            self.settings.operation_timeout,
        )

    def freeze_node(self, name: str) -> None:
        raise UnsupportedCapability(
            self.kind,
            "NodeControl.freeze_node",
            "Azure has no API to hang a VM; use a network fault or the sandbox",
        )

    def drain_node(self, name: str) -> None:
        raise UnsupportedCapability(
            self.kind,
            "NodeControl.drain_node",
            "draining is a Kubernetes operation: compose with the kubernetes backend",
        )

    def restore_node(self, name: str) -> None:
        self._restore_nodes([name])

    def _restore_nodes(self, names: Sequence[str]) -> None:
        """Start every stopped instance behind ``names`` (one call per scale set) and
        wait until the nodes are Ready. Idempotent."""
        self.runner.settle_pending(self.settings.operation_timeout)
        refs = {name: self._node(name)[1] for name in names}
        states = self._instance_states(sorted({r.scale_set for r in refs.values()}))
        stopped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref in refs.values():
            state = states.get(ref)
            if state is None or not state.running:
                stopped[ref.scale_set].append(ref.instance_id)
        for ss, ids in sorted(stopped.items()):
            self.scale_sets.act(
                "start",
                ss,
                ids,
                f"start instances {', '.join(ids)} of {ss.vmss}",
                self.settings.operation_timeout,
            )
        self._wait_ready(list(names))

    def _wait_ready(self, names: list[str]) -> None:
        start = self.clock.now()
        while True:
            ready = {n.name for n in self.node_source.list_nodes() if n.ready}
            missing = [n for n in names if n not in ready]
            if not missing:
                self._record("azure.nodes", "ready", {"nodes": names})
                return
            if self.clock.now().seconds_since(start) > self.settings.node_ready_timeout:
                raise PlatformError(
                    f"nodes not Ready within {self.settings.node_ready_timeout:g} s: "
                    f"{', '.join(missing)}"
                )
            self.clock.sleep(min(self.settings.polling_interval, 1.0))

    # -- ZoneControl ---------------------------------------------------------------
    def zones(self) -> Sequence[str]:
        return sorted({n.zone for n in self.nodes() if n.zone})

    def nodes_in_zone(self, zone: str) -> Sequence[str]:
        return [n.name for n in self.nodes() if n.zone == zone]

    def zone_instances(self, zone: str) -> dict[ScaleSetRef, list[str]]:
        """The instances whose ARM ``zones`` include ``zone``, per scale set of the primary
        cluster: what a zone outage powers off."""
        region = self.settings.cluster.region
        states = self._instance_states(self._scale_sets(region))
        grouped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref, state in sorted(states.items()):
            if zone in state.zones:
                grouped[ref.scale_set].append(ref.instance_id)
        return dict(grouped)

    def crash_zone(self, zone: str) -> list[str]:
        """Zone outage in one call per scale set, with the explicit instance-id list."""
        grouped = self.zone_instances(zone)
        if not grouped:
            raise FaultError(f"no scale-set instances in zone {zone!r}")
        for ss, ids in sorted(grouped.items()):
            self.scale_sets.act(
                "power-off",
                ss,
                ids,
                f"zone {zone} outage: power off {ss.vmss} instances {', '.join(ids)}",
                self.settings.operation_timeout,
            )
        return [i for ids in grouped.values() for i in ids]

    def restore_zone(self, zone: str) -> None:
        self._restore_nodes(self.nodes_in_zone(zone))

    # -- DatabaseControl -----------------------------------------------------------
    def database_topology(self) -> DatabaseTopology:
        return self._db().topology()

    def crash_primary(self) -> str:
        db = self._db()
        return db.failover(db.settings.failover_mode)

    def switchover(self, to_member: str | None = None) -> str:
        db = self._db()
        main = db.primary()
        if to_member is not None and to_member != main.standby_member:
            raise FaultError(
                f"a Flexible Server fails over only to its standby ({main.standby_member}), "
                f"not {to_member}"
            )
        db.failover(db.settings.switchover_mode)
        return db.primary().primary_member

    def rejoin(self, member: str) -> None:
        db = self._db()
        self.runner.settle_pending(self.settings.failover_timeout)
        db.wait_standby(member)

    def run_bad_change(self, sql: str) -> int:
        if self.sql_runner is None:
            raise UnsupportedCapability(
                self.kind,
                "DatabaseControl.run_bad_change",
                "no SQL hook configured (pass sql_runner: a psycopg connection with an "
                "Entra ID token)",
            )
        return self.sql_runner(sql)

    def database_time_iso(self) -> str:
        # Flexible Server clocks are NTP-synchronised Azure time; without a SQL hook the
        # harness's UTC clock is the restore point (say so in the report's evidence)
        return self.clock.now().wall.astimezone(UTC).isoformat()

    def restore_to_point_in_time(self, point_in_time_iso: str) -> str:
        return self._db().restore(point_in_time_iso).name

    def switch_application_database(self, member: str) -> None:
        db = self._db()
        group = db.settings.resource_group if member != db.settings.dr_replica else db.replica_group
        server = member.split("/", 1)[0]
        view = db.view(group, server)
        if self.connection_switch is not None:
            self.connection_switch(view.name, view.fqdn)
        self._save_state({"application_database": view.name})
        self._record("runbook.step", "switch-application-database", {"server": view.name})

    def application_database(self) -> str:
        value = self._load_state().get("application_database")
        return str(value) if value else self._db().settings.server

    # -- RegionControl -------------------------------------------------------------
    def regions(self) -> Sequence[str]:
        return [c.region for c in self._clusters()]

    def region_state(self, region: str) -> NodeState:
        states = self._instance_states(self._scale_sets(region))
        if states and not any(s.running for s in states.values()):
            return NodeState.STOPPED
        return NodeState.RUNNING

    def region_outage(self, region: str) -> None:
        """An Azure region cannot be switched off; what can be is every node-pool
        instance of the region's cluster (the compute half of a regional loss)."""
        states = self._instance_states(self._scale_sets(region))
        grouped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref in sorted(states):
            grouped[ref.scale_set].append(ref.instance_id)
        if not grouped:
            raise FaultError(f"region {region!r} has no scale-set instances")
        for ss, ids in sorted(grouped.items()):
            self.scale_sets.act(
                "power-off",
                ss,
                ids,
                f"region {region} outage: power off {ss.vmss}",
                self.settings.operation_timeout,
            )

    def restore_region(self, region: str) -> None:
        self.runner.settle_pending(self.settings.operation_timeout)
        states = self._instance_states(self._scale_sets(region))
        grouped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref, state in sorted(states.items()):
            if not state.running:
                grouped[ref.scale_set].append(ref.instance_id)
        for ss, ids in sorted(grouped.items()):
            self.scale_sets.act(
                "start",
                ss,
                ids,
                f"region {region}: start {ss.vmss}",
                self.settings.operation_timeout,
            )
        names = [
            name
            for name, (_, ref) in self._mapped().items()
            if self._cluster_of(ref).region == region
        ]
        self._wait_ready(names)
        failed_over_to = self._load_state().get("failed_over_to")
        if failed_over_to and failed_over_to != region and region == self.settings.cluster.region:
            self.fail_over_to(region)  # fail back: switch the roles again

    def fail_over_to(self, region: str) -> None:
        """The DR runbook: promote the database in ``region`` and point the ERP at it."""
        db = self._db()
        dr = self.settings.dr_cluster
        replica = db.settings.dr_replica
        if dr is None or replica is None:
            raise UnsupportedCapability(self.kind, "RegionControl", "no dr replica configured")
        if region == dr.region:
            target, group = replica, db.replica_group
        elif region == self.settings.cluster.region:
            target, group = db.settings.server, db.settings.resource_group
        else:
            raise FaultError(f"unknown region {region!r} (regions: {', '.join(self.regions())})")
        current = db.view(group, target)
        if current.replication_role in ("Primary", "None"):
            pass  # already the writable server: promotion is done (idempotent)
        else:
            mode = db.settings.promote_mode
            if region == self.settings.cluster.region and mode != "Switchover":
                raise PlatformError(
                    "failing back after a Standalone promotion needs a new replica; "
                    "only a Switchover promotion can be failed back"
                )
            option = db.settings.promote_option
            db.promote(target, group, mode, "Planned" if target == db.settings.server else option)
        self._save_state({"failed_over_to": region})
        self.switch_application_database(target)

    # -- state, plan ---------------------------------------------------------------
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file().read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, update: Mapping[str, Any]) -> None:
        state = {**self._load_state(), **update}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self._state_file())

    def describe(self) -> dict[str, object]:
        plan: dict[str, object] = {
            **super().describe(),
            "subscription": self.settings.subscription_id,
            "resource_groups": list(self.settings.allowed_resource_groups),
        }
        try:
            per_zone: dict[str, list[str]] = defaultdict(list)
            mapped = self._mapped()
            for info in self.nodes():
                ref = mapped[info.name][1]
                per_zone[info.zone].append(
                    f"{ref.scale_set.vmss}/{ref.instance_id} (node {info.name})"
                )
            plan["scale_set_instances_per_zone"] = dict(sorted(per_zone.items()))
        except PlatformError as exc:
            plan["scale_set_instances_per_zone"] = f"unavailable: {exc}"
        if self.settings.database is not None:
            plan["database_server"] = self.settings.database.server
            plan["dr_replica"] = self.settings.database.dr_replica
        return plan

    def close(self) -> None:
        for client in (self.scale_sets.client, self.servers.client if self.servers else None):
            close = getattr(client, "close", None)
            if callable(close):
                close()
