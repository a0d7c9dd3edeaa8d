"""Availability-zone outage: every node of one zone is lost at once."""

from __future__ import annotations

from collections.abc import Sequence

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import NodeControl, NodeState, Platform, ZoneControl


@register_fault
class ZoneOutage(Fault):
    """Crash every node in ``zone`` in one step (power loss in a data hall)."""

    kind = "zone-outage"
    capability = ZoneControl

    def __init__(self, platform: Platform, zone: str) -> None:
        super().__init__(platform)
        self.zone = zone
        self.zones = platform.capability(ZoneControl)
        self.nodes = platform.capability(NodeControl)

    def _members(self) -> list[str]:
        members = list(self.zones.nodes_in_zone(self.zone))
        if not members:
            known = ", ".join(self.zones.zones())
            raise FaultError(f"zone {self.zone!r} has no nodes (zones: {known})")
        return members

    def describe(self) -> str:
        return f"take zone {self.zone} down (crash {', '.join(self._members())})"

    def targets(self) -> Sequence[TargetRef]:
        info = {n.name: n for n in self.nodes.nodes()}
        refs = [TargetRef("zone", self.zone, zone=self.zone)]
        for name in self._members():
            node = info.get(name)
            refs.append(
                TargetRef("node", name, zone=self.zone, region=node.region if node else None)
            )
        return refs

    def params(self) -> JSONParams:
        return {"zone": self.zone}

    def inject(self) -> None:
        for name in self._members():
            self.nodes.crash_node(name)

    def verify(self) -> Evidence:
        states = {name: self.nodes.node_state(name) for name in self._members()}
        up = [n for n, s in states.items() if s is not NodeState.STOPPED]
        if up:
            raise FaultError(f"zone {self.zone}: nodes still up after the outage: {', '.join(up)}")
        return Evidence(
            f"all {len(states)} nodes of zone {self.zone} are down",
            {n: str(s) for n, s in states.items()},
        )

    def revert(self) -> None:
        errors = []
        for name in self._members():
            try:
                self.nodes.restore_node(name)
            except Exception as exc:  # restore the others before reporting
                errors.append(f"{name}: {exc}")
        if errors:
            raise FaultError(f"zone {self.zone} not fully restored: {'; '.join(errors)}")
