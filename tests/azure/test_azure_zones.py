"""Zone names are region-scoped on the Azure backend (westeurope-2, never a bare "2"),
and a zone outage goes through the one-call ZoneOutageControl path."""

from __future__ import annotations

import pytest
from arm_helpers import DR_RG, DR_VMSS, NODE_RG, VMSS

from ledgerdrill.errors import ConfigError, FaultError
from ledgerdrill.faults import ZoneOutage, fault_from_record
from ledgerdrill.platforms.azure import AzurePlatform
from ledgerdrill.platforms.base import NodeState, ZoneOutageControl
from ledgerdrill.testing.fake_arm import FakeArm


def test_zones_are_named_per_region(platform: AzurePlatform) -> None:
    assert list(platform.zones()) == [
        "northeurope-1", "northeurope-2", "westeurope-1", "westeurope-2", "westeurope-3",
    ]  # fmt: skip
    # zone 2 exists in both regions; each name holds only its own region's node
    assert list(platform.nodes_in_zone("westeurope-2")) == ["aks-system-1"]
    assert list(platform.nodes_in_zone("northeurope-2")) == ["aks-dr-1"]


def test_a_bare_zone_number_is_refused_before_any_change(
    platform: AzurePlatform, arm: FakeArm
) -> None:
    with pytest.raises(FaultError, match=r"zone '2' is ambiguous.*westeurope-2"):
        platform.nodes_in_zone("2")
    fault = ZoneOutage(platform, "2")
    with pytest.raises(FaultError, match="ambiguous"):
        fault.prepare()
    assert arm.requests_to(r"/(poweroff|start|deallocate)$") == []


def test_zone_outage_spares_the_dr_zone_with_the_same_number(
    platform: AzurePlatform, arm: FakeArm
) -> None:
    """The bug this fixes: ZoneOutage("2") used to crash aks-dr-1 (northeurope zone 2)."""
    assert platform.supports(ZoneOutageControl)
    fault = ZoneOutage(platform, "westeurope-2")
    fault.prepare()
    record = fault.undo_record()
    assert record["undo"] == {"nodes": ["aks-system-1"], "one_call": True}
    fault.inject()
    (call,) = arm.requests_to(r"/poweroff$", "POST")  # one call, not node after node
    assert call.path.endswith(f"/resourceGroups/{NODE_RG.lower()}/providers/Microsoft.Compute/"
                              f"virtualMachineScaleSets/{VMSS}/poweroff")  # fmt: skip
    assert call.body == {"instanceIds": ["1"]} and call.query["skipShutdown"] == "true"
    assert arm.scale_sets[(DR_RG.lower(), DR_VMSS)]["1"]["power"] == "running"
    assert platform.node_state("aks-dr-1") is NodeState.RUNNING
    assert "all 1 nodes of zone westeurope-2 are down" in fault.verify().summary
    fault_from_record(platform, record).revert()  # as cleanup does after a SIGKILL
    (start,) = arm.requests_to(r"/start$", "POST")
    assert start.body == {"instanceIds": ["1"]} and VMSS in start.path
    fault.revert()  # idempotent: nothing stopped, no second start
    assert len(arm.requests_to(r"/start$", "POST")) == 1
    assert all(n.state is NodeState.RUNNING for n in platform.nodes())


def test_zone_outage_with_several_instances_in_the_zone(
    platform: AzurePlatform, arm: FakeArm
) -> None:
    ZoneOutage(platform, "westeurope-1").inject()
    (call,) = arm.requests_to(r"/poweroff$", "POST")
    assert call.body == {"instanceIds": ["0", "3"]}


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("scenarios: {zone-outage: {params: {zone: '2'}}}\n",
         "scenarios.zone-outage.params.zone: '2' is a bare Azure zone number"),
        ("safety: {allow: {zones: ['1', westeurope-2]}}\n",
         "safety.allow.zones: '1' is a bare Azure zone number"),
    ],
)  # fmt: skip
def test_target_file_refuses_bare_zones(tmp_path: object, snippet: str, message: str) -> None:
    from pathlib import Path

    from ledgerdrill.targets import load_target

    folder = Path(str(tmp_path))
    text = (
        "name: aks-t\ntiers: {core: {rto: 1m, rpo: 0s}}\nplatform:\n  kind: azure\n"
        "  subscription_id: 11111111-2222-3333-4444-555555555555\n"
        "  allowed_resource_groups: [rg-a]\n"
        "  cluster: {name: c, region: westeurope, node_resource_group: rg-a}\n" + snippet
    )
    (folder / "t.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"e\.g\. westeurope-") as info:
        load_target(folder / "t.yaml")
    assert message in str(info.value)
