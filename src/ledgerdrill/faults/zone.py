"""Availability-zone outage: every node of one zone is lost at once.

A backend offering ``ZoneOutageControl`` takes the zone down in one operation (one
cloud call per node group, as a real zone loss is); any other backend gets node
after node through ``NodeControl``. Either way the undo record names the zone and
the nodes it held, and verify checks every one of those nodes is down."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import (
    NodeControl,
    NodeState,
    Platform,
    ZoneControl,
    ZoneOutageControl,
)
from ledgerdrill.target_kinds import TargetKind


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
        self.one_call: ZoneOutageControl | None = (
            platform.capability(ZoneOutageControl) if platform.supports(ZoneOutageControl) else None
        )
        self.recorded: list[str] | None = None  # the members the journal holds

    def _members(self) -> list[str]:
        if self.recorded is not None:
            return list(self.recorded)
        members = list(self.zones.nodes_in_zone(self.zone))
        if not members:
            known = ", ".join(self.zones.zones())
            raise FaultError(f"zone {self.zone!r} has no nodes (zones: {known})")
        return members

    def describe(self) -> str:
        return f"take zone {self.zone} down (crash {', '.join(self._members())})"

    def targets(self) -> Sequence[TargetRef]:
        info = {n.name: n for n in self.nodes.nodes()}
        refs = [TargetRef(TargetKind.ZONE, self.zone, zone=self.zone)]
        for name in self._members():
            node = info.get(name)
            refs.append(
                TargetRef(
                    TargetKind.NODE, name, zone=self.zone, region=node.region if node else None
                )
            )
        return refs

    def params(self) -> JSONParams:
        return {"zone": self.zone}

    def prepare(self) -> None:
        self.recorded = self._members()

    def undo_state(self) -> JSONParams:
        # the nodes to bring back, even if a node list read during the outage differs
        return {"nodes": self._members(), "one_call": self.one_call is not None}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        nodes = state.get("nodes")
        if isinstance(nodes, list) and nodes:
            self.recorded = [str(n) for n in nodes]

    def inject(self) -> None:
        if self.one_call is not None:
            self.one_call.zone_outage(self.zone)
            return
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
        if self.one_call is not None:
            try:
                self.one_call.restore_zone(self.zone)
            except Exception as exc:  # loud, and named like the node-by-node failure
                raise FaultError(f"zone {self.zone} not fully restored: {exc}") from exc
            return
        errors = []
        for name in self._members():
            try:
                self.nodes.restore_node(name)
            except Exception as exc:  # restore the others before reporting
                errors.append(f"{name}: {exc}")
        if errors:
            raise FaultError(f"zone {self.zone} not fully restored: {'; '.join(errors)}")
