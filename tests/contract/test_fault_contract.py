"""Every fault honours the same contract on a platform with its capability:

- ``prepare`` changes nothing; the undo record is complete before ``inject``;
- after ``inject``, ``verify`` gives evidence; ``revert`` undoes it and is idempotent;
- a fault rebuilt from its journal record (as ``cleanup`` does after a SIGKILL) reverts too.

Each backend's contract suite runs these cases against its own platform (here: the fake).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.faults import (
    BadRelease,
    CacheLoss,
    CertificateExpiry,
    CertificateRemoval,
    DatabaseCorruption,
    DatabaseFailover,
    Fault,
    NodeCrash,
    NodeFreeze,
    RegionOutage,
    ZoneOutage,
    fault_from_record,
)
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.fake import FakePlatform

NODES = {"node-a": "a", "node-b": "b", "node-c": "c"}


def snapshot(p: FakePlatform) -> dict[str, Any]:
    """Everything observable about the platform's health (not its history)."""
    return {
        "nodes": {n.name: n.state for n in p.nodes()},
        "primary": p.database_topology().primary.name,  # type: ignore[union-attr]
        "stopped_members": [m.name for m in p.database_topology().members if m.role == "stopped"],
        "rows": p.ledger_rows(),
        "cert": p.served_certificate().variant,
        "regions": {r: p.region_state(r) for r in p.regions()},
        "cache": p.cache_alive(),
        "release": p.current_release().version,
    }


CASES: dict[str, Callable[[FakePlatform], Fault]] = {
    "node-crash": lambda p: NodeCrash(p, "node-b"),
    "node-freeze": lambda p: NodeFreeze(p, "node-b"),
    "zone-outage": lambda p: ZoneOutage(p, "a"),
    "database-failover-crash": lambda p: DatabaseFailover(p, "crash"),
    "database-failover-switchover": lambda p: DatabaseFailover(p, "switchover"),
    "database-corruption": lambda p: DatabaseCorruption(
        p, "DELETE FROM account_move", "month-end job"
    ),
    "certificate-expiry": CertificateExpiry,
    "certificate-removal": CertificateRemoval,
    "region-outage": lambda p: RegionOutage(p, "primary"),
    "cache-loss": CacheLoss,
    "bad-release": lambda p: BadRelease(p, "2.0.0-bad"),
}


@pytest.fixture
def platform(tmp_path: Path) -> FakePlatform:
    return FakePlatform("fake", tmp_path / "state.json", NODES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_inject_verify_revert(platform: FakePlatform, case: str) -> None:
    before = snapshot(platform)
    fault = CASES[case](platform)
    fault.prepare()
    assert snapshot(platform) == before, "prepare must not change anything"
    record = fault.undo_record()
    assert record["fault"] == fault.kind and fault.describe() and fault.targets()
    fault.inject()
    assert snapshot(platform) != before, "the fault must change something observable"
    evidence = fault.verify()
    assert evidence.summary
    fault.revert()
    fault.revert()
    after = snapshot(platform)
    if case.startswith("database-failover"):
        # the new primary stays primary; the old one is back as a standby
        assert after["primary"] != before["primary"] and after["stopped_members"] == []
        for key in ("primary", "stopped_members"):
            after.pop(key), before.pop(key)
    assert after == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_rebuilt_from_journal_record_reverts(platform: FakePlatform, case: str) -> None:
    before = snapshot(platform)
    fault = CASES[case](platform)
    fault.prepare()
    record = fault.undo_record()
    fault.inject()
    rebuilt = fault_from_record(platform, record)
    assert type(rebuilt) is type(fault) and rebuilt.params() == fault.params()
    rebuilt.revert()
    assert snapshot(platform)["nodes"] == before["nodes"]
    after = snapshot(platform)
    if case.startswith("database-failover"):
        assert after["stopped_members"] == []
        after.pop("primary"), before.pop("primary")
    assert after == before


def test_node_freeze_is_not_a_crash(platform: FakePlatform) -> None:
    fault = NodeFreeze(platform, "node-a")
    fault.inject()
    assert platform.node_state("node-a") is NodeState.FROZEN
    fault.revert()
