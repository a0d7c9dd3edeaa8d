"""The shared fault contract (tests/contract/test_fault_contract.py) for the Azure backend
against the fake ARM: prepare changes nothing, inject is observable, verify gives
evidence, revert (also of a fault rebuilt from its journal record) restores the estate.

Kept here because the shared file was being restructured concurrently; the lead can
move these cases into its backend parametrisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledgerdrill.faults import (
    DatabaseFailover,
    Fault,
    NodeCrash,
    RegionOutage,
    ZoneOutage,
    fault_from_record,
)
from ledgerdrill.platforms.azure import AzurePlatform

CASES: dict[str, Callable[[AzurePlatform], Fault]] = {
    "node-crash": lambda p: NodeCrash(p, "aks-system-1"),
    "zone-outage": lambda p: ZoneOutage(p, "2"),
    "database-failover-crash": lambda p: DatabaseFailover(p, "crash"),
    "database-failover-switchover": lambda p: DatabaseFailover(p, "switchover"),
    "region-outage": lambda p: RegionOutage(p, "westeurope"),
}


def snapshot(p: AzurePlatform) -> dict[str, Any]:
    topo = p.database_topology()
    return {
        "nodes": {n.name: n.state for n in p.nodes()},
        "primary": topo.primary.name if topo.primary else None,
        "stopped_members": [m.name for m in topo.members if m.role == "stopped"],
        "regions": {r: p.region_state(r) for r in p.regions()},
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_inject_verify_revert(platform: AzurePlatform, case: str) -> None:
    before = snapshot(platform)
    fault = CASES[case](platform)
    fault.prepare()
    assert snapshot(platform) == before, "prepare must not change anything"
    record = fault.undo_record()
    assert record["fault"] == fault.kind and fault.describe() and fault.targets()
    fault.inject()
    assert snapshot(platform) != before, "the fault must change something observable"
    assert fault.verify().summary
    fault_from_record(platform, record).revert()  # as cleanup does after a SIGKILL
    fault.revert()  # idempotent
    after = snapshot(platform)
    if case.startswith("database-failover"):
        # the new primary stays primary; the old one is back as the standby
        assert after["primary"] != before["primary"] and after["stopped_members"] == []
        after.pop("primary"), before.pop("primary")
    assert after == before
