from __future__ import annotations

import pytest
from arm_helpers import NODE_RG, SUB, VMSS, provider_id

from ledgerdrill.errors import PlatformError, SafetyViolation
from ledgerdrill.faults import NodeCrash
from ledgerdrill.platforms.azure import AzurePlatform
from ledgerdrill.platforms.azure.compute import explicit_ids
from ledgerdrill.platforms.azure.ids import ScaleSetRef, parse_provider_id
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.testing.fake_arm import FakeArm


def test_provider_id_maps_to_instance_with_lower_cased_group() -> None:
    ref = parse_provider_id(provider_id(NODE_RG, VMSS, "3"))
    assert ref.scale_set == ScaleSetRef(SUB, NODE_RG.lower(), VMSS) and ref.instance_id == "3"
    # a mixed-case group in providerID is the same resource group
    assert (
        parse_provider_id(provider_id(NODE_RG, VMSS, "3").replace(NODE_RG.lower(), NODE_RG)) == ref
    )
    with pytest.raises(PlatformError, match="not a VM scale-set instance"):
        parse_provider_id("kind://docker/onprem/onprem-control-plane")


def test_nodes_and_zones_come_from_arm(platform: AzurePlatform) -> None:
    nodes = {n.name: n for n in platform.nodes()}
    assert nodes["aks-system-3"].zone == "westeurope-1"
    assert nodes["aks-system-3"].state is NodeState.RUNNING
    assert nodes["aks-dr-0"].region == "northeurope" and nodes["aks-dr-0"].zone == "northeurope-1"
    assert sorted(platform.nodes_in_zone("westeurope-1")) == ["aks-system-0", "aks-system-3"]


def test_crash_is_power_off_with_skip_shutdown_and_explicit_id(
    platform: AzurePlatform, arm: FakeArm
) -> None:
    platform.crash_node("aks-system-1")
    assert platform.node_state("aks-system-1") is NodeState.STOPPED
    (call,) = arm.requests_to(r"/poweroff$", "POST")
    assert call.query["skipShutdown"] == "true" and call.query["api-version"] == "2026-04-01"
    assert call.body == {"instanceIds": ["1"]}
    # the resource group travels lower-cased, as AKS wrote it in providerID
    assert f"/resourceGroups/{NODE_RG.lower()}/" in call.path
    platform.restore_node("aks-system-1")
    assert platform.node_state("aks-system-1") is NodeState.RUNNING
    assert arm.requests_to(r"/start$", "POST")[0].body == {"instanceIds": ["1"]}
    platform.restore_node("aks-system-1")  # idempotent: no second start
    assert len(arm.requests_to(r"/start$", "POST")) == 1


def test_node_loss_is_deallocate(platform: AzurePlatform, arm: FakeArm) -> None:
    platform.lose_node("aks-system-2")
    assert arm.scale_sets[(NODE_RG.lower(), VMSS)]["2"]["power"] == "deallocated"
    assert arm.requests_to(r"/deallocate$")[0].body == {"instanceIds": ["2"]}
    platform.restore_node("aks-system-2")


def test_zone_outage_is_one_call_with_the_exact_ids(platform: AzurePlatform, arm: FakeArm) -> None:
    assert platform.crash_zone("westeurope-1") == ["0", "3"]
    (call,) = arm.requests_to(r"/poweroff$", "POST")
    assert call.body == {"instanceIds": ["0", "3"]} and call.query["skipShutdown"] == "true"
    power = {i: vm["power"] for i, vm in arm.scale_sets[(NODE_RG.lower(), VMSS)].items()}
    assert power == {"0": "stopped", "1": "running", "2": "running", "3": "stopped"}
    platform.restore_zone("westeurope-1")
    assert arm.requests_to(r"/start$", "POST")[0].body == {"instanceIds": ["0", "3"]}
    assert all(n.state is NodeState.RUNNING for n in platform.nodes())


@pytest.mark.parametrize("ids", [None, [], [""]])
def test_missing_or_empty_instance_list_is_refused_before_any_call(
    platform: AzurePlatform, arm: FakeArm, ids: list[str] | None
) -> None:
    with pytest.raises(SafetyViolation, match="explicit"):
        explicit_ids(ids)
    with pytest.raises(SafetyViolation):
        platform.scale_sets.act(
            "power-off", ScaleSetRef(SUB, NODE_RG.lower(), VMSS), ids, "test", 5
        )
    assert arm.requests == []


def test_resource_group_outside_allowlist_is_refused(platform: AzurePlatform, arm: FakeArm) -> None:
    with pytest.raises(SafetyViolation, match="not allowed"):
        platform.scale_sets.act("power-off", ScaleSetRef(SUB, "rg-other", VMSS), ["0"], "x", 5)
    with pytest.raises(SafetyViolation, match="subscription"):
        platform.scale_sets.act("power-off", ScaleSetRef("0" * 36, NODE_RG, VMSS), ["0"], "x", 5)
    assert arm.requests == []


def test_throttling_is_retried(platform: AzurePlatform, arm: FakeArm) -> None:
    arm.throttle = 2
    platform.crash_node("aks-system-0")
    assert platform.node_state("aks-system-0") is NodeState.STOPPED
    platform.restore_node("aks-system-0")


def test_freeze_and_drain_are_unsupported_with_a_reason(platform: AzurePlatform) -> None:
    from ledgerdrill.errors import UnsupportedCapability

    with pytest.raises(UnsupportedCapability, match="hang a VM"):
        platform.freeze_node("aks-system-0")
    with pytest.raises(UnsupportedCapability, match="kubernetes backend"):
        platform.drain_node("aks-system-0")


def test_fault_rebuilt_from_its_record_reverts(platform: AzurePlatform) -> None:
    from ledgerdrill.faults import fault_from_record

    fault = NodeCrash(platform, "aks-system-2")
    record = fault.undo_record()
    fault.inject()
    fault_from_record(platform, record).revert()
    assert platform.node_state("aks-system-2") is NodeState.RUNNING
