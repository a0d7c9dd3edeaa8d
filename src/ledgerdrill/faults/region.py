"""Regional outage: everything in a region is lost; recovery is the DR runbook."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import (
    NodeControl,
    NodeState,
    Platform,
    RegionControl,
    RegionSnapshots,
)
from ledgerdrill.target_kinds import TargetKind


@register_fault
class RegionOutage(Fault):
    kind = "region-outage"
    capability = RegionControl

    def __init__(self, platform: Platform, region: str) -> None:
        super().__init__(platform)
        self.region = region
        self.regions = platform.capability(RegionControl)
        # a backend that changes spec fields (Kubernetes: replica counts) journals them
        self.snapshots = self.regions if isinstance(self.regions, RegionSnapshots) else None
        self.snapshot: dict[str, Any] | None = None
        self.actions: list[str] | None = None

    def describe(self) -> str:
        if self.snapshots is not None:  # the backend says what it changes
            if self.actions is None:  # read once, before the change: the plan and the run agree
                self.actions = self.snapshots.region_outage_actions(self.region)
            shown = "; ".join(self.actions) or "nothing runs there"
            return f"take region {self.region} down: {shown}"
        return f"take region {self.region} down (every node, database and entry in it)"

    def targets(self) -> Sequence[TargetRef]:
        refs = [TargetRef(TargetKind.REGION, self.region, region=self.region)]
        # a backend that takes the region's workloads away (not its nodes) names no nodes
        if self.snapshots is None and self.platform.supports(NodeControl):
            refs += [
                TargetRef(TargetKind.NODE, n.name, zone=n.zone, region=n.region)
                for n in self.platform.capability(NodeControl).nodes()
                if n.region == self.region
            ]
        return refs

    def params(self) -> JSONParams:
        return {"region": self.region}

    def prepare(self) -> None:
        if self.snapshots is not None:
            self.snapshot = self.snapshots.region_snapshot(self.region)
            self.describe()  # what it will change, as read before the change

    def undo_state(self) -> JSONParams:
        return {"snapshot": self.snapshot} if self.snapshot is not None else {}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        snapshot = state.get("snapshot")
        self.snapshot = dict(snapshot) if isinstance(snapshot, Mapping) else None

    def inject(self) -> None:
        if self.snapshots is not None and self.snapshot is None:
            raise FaultError("region outage: prepare() first, so the previous state is journaled")
        self.regions.region_outage(self.region)

    def verify(self) -> Evidence:
        state = self.regions.region_state(self.region)
        if state is not NodeState.STOPPED:
            raise FaultError(f"region {self.region} is {state} after the outage")
        return Evidence(f"region {self.region} is down")

    def revert(self) -> None:
        if self.snapshots is not None and self.snapshot is not None:
            self.snapshots.restore_region_from(self.region, self.snapshot)
        else:
            self.regions.restore_region(self.region)
