"""ZoneOutage picks its mechanism from the platform: one zone-wide operation where the
backend offers ZoneOutageControl (Azure: one call per scale set), node after node
otherwise (fake, sandbox, kubernetes). Undo record and verify are the same either way."""

from __future__ import annotations

from pathlib import Path

from ledgerdrill.faults import ZoneOutage, fault_from_record
from ledgerdrill.platforms.base import NodeState, ZoneOutageControl
from ledgerdrill.platforms.fake import FakePlatform

NODES = {"node-a1": "a", "node-a2": "a", "node-b": "b"}


class CallCounting(FakePlatform):
    """A fake whose crash calls are counted (what the fault asked for, not the result)."""

    def __init__(self, path: Path) -> None:
        super().__init__("fake", path, NODES)
        self.calls: list[str] = []

    def crash_node(self, name: str) -> None:
        self.calls.append(f"crash_node {name}")
        super().crash_node(name)

    def restore_node(self, name: str) -> None:
        self.calls.append(f"restore_node {name}")
        super().restore_node(name)


class OneCall(CallCounting):
    """The same fake offering the zone-wide operation."""

    def zone_outage(self, zone: str) -> None:
        self.calls.append(f"zone_outage {zone}")
        for name in self.nodes_in_zone(zone):
            FakePlatform.crash_node(self, name)

    def restore_zone(self, zone: str) -> None:
        self.calls.append(f"restore_zone {zone}")
        for name in self.nodes_in_zone(zone):
            FakePlatform.restore_node(self, name)


def test_without_the_capability_it_is_node_after_node(tmp_path: Path) -> None:
    platform = CallCounting(tmp_path / "state.json")
    assert not platform.supports(ZoneOutageControl)
    fault = ZoneOutage(platform, "a")
    fault.prepare()
    assert fault.undo_record()["undo"] == {"nodes": ["node-a1", "node-a2"], "one_call": False}
    fault.inject()
    assert platform.calls == ["crash_node node-a1", "crash_node node-a2"]
    assert "all 2 nodes of zone a are down" in fault.verify().summary
    fault.revert()
    assert platform.calls[2:] == ["restore_node node-a1", "restore_node node-a2"]


def test_with_the_capability_it_is_one_zone_operation(tmp_path: Path) -> None:
    platform = OneCall(tmp_path / "state.json")
    assert platform.supports(ZoneOutageControl)
    fault = ZoneOutage(platform, "a")
    fault.prepare()
    record = fault.undo_record()
    assert record["undo"] == {"nodes": ["node-a1", "node-a2"], "one_call": True}
    fault.inject()
    assert platform.calls == ["zone_outage a"]
    # verify is independent of the mechanism: it reads every member's state
    assert {platform.node_state(n) for n in ("node-a1", "node-a2")} == {NodeState.STOPPED}
    assert fault.verify().details == {"node-a1": "stopped", "node-a2": "stopped"}
    fault_from_record(platform, record).revert()  # as cleanup does
    assert platform.calls[1:] == ["restore_zone a"]
    assert platform.node_state("node-b") is NodeState.RUNNING


def test_a_rebuilt_fault_restores_the_journaled_nodes(tmp_path: Path) -> None:
    """The record's node list wins over a node list read after the outage."""
    platform = CallCounting(tmp_path / "state.json")
    record = {"fault": "zone-outage", "params": {"zone": "a"},
              "undo": {"nodes": ["node-a2"], "one_call": False}}  # fmt: skip
    platform.crash_node("node-a2")
    fault_from_record(platform, record).revert()
    assert platform.calls[-1:] == ["restore_node node-a2"]
    assert platform.node_state("node-a2") is NodeState.RUNNING
