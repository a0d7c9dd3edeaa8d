"""RegionControl: the compute half of a regional loss (every node-pool instance of the
region's cluster powered off) and the DR runbook (promote the dr replica, or
geo-restore into the paired region, then point the ERP at it; fail back after)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerdrill.errors import FaultError, PlatformError, UnsupportedCapability
from ledgerdrill.platforms.azure.compute import InstanceState, ScaleSets
from ledgerdrill.platforms.azure.ids import InstanceRef, ScaleSetRef
from ledgerdrill.platforms.azure.lro import OperationRunner
from ledgerdrill.platforms.azure.nodes import AksNode
from ledgerdrill.platforms.azure.postgres import FlexibleServers
from ledgerdrill.platforms.azure.state import PlatformState
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.targets import AzureClusterSettings, AzurePlatformSettings


class AzureRegionOps:
    kind: str
    settings: AzurePlatformSettings
    scale_sets: ScaleSets
    runner: OperationRunner
    state: PlatformState

    if TYPE_CHECKING:  # provided by AzureNodeOps, AzureDatabaseOps and AzurePlatform

        def _record(self, kind: str, name: str, attributes: Mapping[str, Any]) -> None: ...

        def _clusters(self) -> list[AzureClusterSettings]: ...

        def _scale_sets(self, region: str | None = None) -> list[ScaleSetRef]: ...

        def _instance_states(
            self, scale_sets: Sequence[ScaleSetRef]
        ) -> dict[InstanceRef, InstanceState]: ...

        def _mapped(self) -> dict[str, tuple[AksNode, InstanceRef]]: ...

        def _cluster_of(self, ref: InstanceRef) -> AzureClusterSettings: ...

        def _start_instances(
            self, stopped: Mapping[ScaleSetRef, Sequence[str]], why: str
        ) -> None: ...

        def _power_off_instances(
            self, running: Mapping[ScaleSetRef, Sequence[str]], why: str
        ) -> None: ...

        def _wait_ready(self, names: list[str]) -> None: ...

        def _db(self) -> FlexibleServers: ...

        def switch_application_database(self, member: str) -> None: ...

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
        self._power_off_instances(grouped, f"region {region} outage")

    def restore_region(self, region: str) -> None:
        self.runner.settle_pending(self.settings.operation_timeout)
        stopped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref, state in sorted(self._instance_states(self._scale_sets(region)).items()):
            if not state.running:
                stopped[ref.scale_set].append(ref.instance_id)
        self._start_instances(stopped, f"region {region}")
        names = [
            name
            for name, (_, ref) in self._mapped().items()
            if self._cluster_of(ref).region == region
        ]
        self._wait_ready(names)
        failed_over_to = self.state.load().get("failed_over_to")
        if failed_over_to and failed_over_to != region and region == self.settings.cluster.region:
            self.fail_over_to(region)  # fail back: switch the roles again

    def fail_over_to(self, region: str) -> None:
        """The DR runbook: promote the database in ``region`` (or geo-restore one there
        when the target has no dr replica) and point the ERP at it."""
        db = self._db()
        dr = self.settings.dr_cluster
        if dr is None:
            raise UnsupportedCapability(self.kind, "RegionControl", "no dr_cluster configured")
        if region == dr.region and not db.settings.dr_replica:
            restored = db.geo_restore(dr.region, None)
            self.state.save({"failed_over_to": region})
            self.switch_application_database(restored.name)
            return
        if region == dr.region:
            target, group = str(db.settings.dr_replica), db.replica_group
        elif region == self.settings.cluster.region:
            target, group = db.settings.server, db.settings.resource_group
        else:
            raise FaultError(f"unknown region {region!r} (regions: {', '.join(self.regions())})")
        current = db.view(group, target)
        if current.replication_role not in ("Primary", "None"):
            self._promote(db, target, group, failing_back=region == self.settings.cluster.region)
        # else: already the writable server, the promotion is done (idempotent)
        self.state.save({"failed_over_to": region})
        self.switch_application_database(target)

    def _promote(self, db: FlexibleServers, target: str, group: str, failing_back: bool) -> None:
        mode = db.settings.promote_mode
        if failing_back and mode != "Switchover":
            raise PlatformError(
                "failing back after a Standalone promotion needs a new replica; "
                "only a Switchover promotion can be failed back"
            )
        endpoint = db.settings.virtual_endpoint
        if endpoint:
            db.endpoints.require_member(endpoint, target)  # checked before any change
        option = "Planned" if failing_back else db.settings.promote_option
        db.promote(target, group, mode, option)
        if endpoint:
            self._check_writer_follows(db, endpoint, target, group)

    def _check_writer_follows(
        self, db: FlexibleServers, endpoint: str, target: str, group: str
    ) -> None:
        """Independent evidence the writer moved: the promoted server is the endpoint's
        writable member (Primary) after the operation ended."""
        view = db.endpoints.read(endpoint)
        role = db.view(group, target).replication_role
        if target not in view.members or role != "Primary":
            raise PlatformError(
                f"writer endpoint {view.writer_host} did not follow the promotion of "
                f"{target} (members: {', '.join(view.members)}; {target} is {role})"
            )
        self._record(
            "azure.virtual-endpoint",
            "writer-follows",
            {"endpoint": view.writer_host, "server": target},
        )
