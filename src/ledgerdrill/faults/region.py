"""Regional outage: everything in a region is lost; recovery is the DR runbook."""

from __future__ import annotations

from collections.abc import Sequence

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import NodeControl, NodeState, Platform, RegionControl


@register_fault
class RegionOutage(Fault):
    kind = "region-outage"
    capability = RegionControl

    def __init__(self, platform: Platform, region: str) -> None:
        super().__init__(platform)
        self.region = region
        self.regions = platform.capability(RegionControl)

    def describe(self) -> str:
        return f"take region {self.region} down (every node, database and entry in it)"

    def targets(self) -> Sequence[TargetRef]:
        refs = [TargetRef("region", self.region, region=self.region)]
        if self.platform.supports(NodeControl):
            refs += [
                TargetRef("node", n.name, zone=n.zone, region=n.region)
                for n in self.platform.capability(NodeControl).nodes()
                if n.region == self.region
            ]
        return refs

    def params(self) -> JSONParams:
        return {"region": self.region}

    def inject(self) -> None:
        self.regions.region_outage(self.region)

    def verify(self) -> Evidence:
        state = self.regions.region_state(self.region)
        if state is not NodeState.STOPPED:
            raise FaultError(f"region {self.region} is {state} after the outage")
        return Evidence(f"region {self.region} is down")

    def revert(self) -> None:
        self.regions.restore_region(self.region)
