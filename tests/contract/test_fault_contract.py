"""Every fault honours the same contract on a platform with its capability:

- ``prepare`` changes nothing; the undo record is complete before ``inject``;
- after ``inject``, ``verify`` gives evidence; ``revert`` undoes it and is idempotent;
- a fault rebuilt from its journal record (as ``cleanup`` does after a SIGKILL) reverts too.

Each backend runs these cases: the fake, and the Kubernetes backend against the fake
API server over real HTTP. A step a backend cannot do faithfully raises
``UnsupportedCapability`` and the case skips with that reason.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.errors import UnsupportedCapability
from ledgerdrill.faults import (
    BadRelease,
    CacheLoss,
    CertificateExpiry,
    CertificateRemoval,
    DatabaseCorruption,
    DatabaseFailover,
    Fault,
    NetworkLatency,
    NetworkLoss,
    NetworkPartition,
    NodeCrash,
    NodeFreeze,
    RegionOutage,
    ZoneOutage,
    fault_from_record,
)
from ledgerdrill.platforms.base import (
    CacheControl,
    CertificateControl,
    DatabaseControl,
    NetworkControl,
    NodeState,
    Platform,
    RegionControl,
    ReleaseControl,
)
from ledgerdrill.platforms.fake import FakePlatform

sys.path.insert(0, str(Path(__file__).parents[1] / "kubernetes"))
sys.path.insert(0, str(Path(__file__).parents[1] / "azure"))
from aks_fakes import FIXTURES as ARM_FIXTURES
from aks_fakes import aks_estate, node_name
from fake_cluster import fake_platform

from ledgerdrill.testing.fake_arm import FakeArmServer

NODES = {"node-a": "a", "node-b": "b", "node-c": "c"}
# per backend: the node and zone the cases act on
NAMES = {
    "fake": {"node": "node-b", "zone": "a"},
    "kubernetes": {"node": "ledgerdrill-worker3", "zone": "zone-c"},  # primary in zone-a
    # an AKS target on the fake ARM + fake API servers; zones are region-scoped there
    "azure": {
        "node": node_name("aks-erp-12345678-vmss", "1"),
        "zone": "westeurope-2",
        "region": "westeurope",
    },
}


def snapshot(p: Platform) -> dict[str, Any]:
    """Everything observable about the platform's health (not its history)."""
    out: dict[str, Any] = {"nodes": {n.name: n.state for n in p.nodes()}}  # type: ignore[attr-defined]
    if p.supports(DatabaseControl):
        topo = p.capability(DatabaseControl).database_topology()
        out["primary"] = topo.primary.name if topo.primary else None
        out["stopped_members"] = [m.name for m in topo.members if m.role == "stopped"]
    if isinstance(p, FakePlatform):
        out["rows"] = p.ledger_rows()
    if p.supports(CertificateControl):
        out["cert"] = p.capability(CertificateControl).served_certificate().variant
    if p.supports(RegionControl):
        regions = p.capability(RegionControl)
        out["regions"] = {r: regions.region_state(r) for r in regions.regions()}
    if p.supports(CacheControl):
        out["cache"] = p.capability(CacheControl).cache_alive()
    if p.supports(ReleaseControl):
        out["release"] = p.capability(ReleaseControl).current_release().version
    if p.supports(NetworkControl):
        network = p.capability(NetworkControl)
        out["links"] = {name: network.link_state(name) for name in network.links()}
    return out


class Backend:
    def __init__(self, kind: str, platform: Platform, settle: Callable[[], None]) -> None:
        self.kind, self.platform, self.settle = kind, platform, settle
        self.names = NAMES[kind]


CASES: dict[str, Callable[[Platform, dict[str, str]], Fault]] = {
    "node-crash": lambda p, n: NodeCrash(p, n["node"]),
    "node-freeze": lambda p, n: NodeFreeze(p, n["node"]),
    "zone-outage": lambda p, n: ZoneOutage(p, n["zone"]),
    "database-failover-crash": lambda p, n: DatabaseFailover(p, "crash"),
    "database-failover-switchover": lambda p, n: DatabaseFailover(p, "switchover"),
    "database-corruption": lambda p, n: DatabaseCorruption(
        p, "DELETE FROM account_move", "month-end job"
    ),
    "certificate-expiry": lambda p, n: CertificateExpiry(p),
    "certificate-removal": lambda p, n: CertificateRemoval(p),
    "region-outage": lambda p, n: RegionOutage(p, n.get("region", "primary")),
    "cache-loss": lambda p, n: CacheLoss(p),
    "bad-release": lambda p, n: BadRelease(p, "2.0.0-bad"),
    "network-latency": lambda p, n: NetworkLatency(p, "erp>db-a", 30),
    "network-loss": lambda p, n: NetworkLoss(p, "erp>db-a", 10),
    "network-partition": lambda p, n: NetworkPartition(p, "db-b>db-a"),
}


@pytest.fixture(scope="session")
def fake_arm() -> Iterator[FakeArmServer]:
    with FakeArmServer(ARM_FIXTURES, delay_s=0.1) as server:
        yield server


@pytest.fixture(params=["fake", "kubernetes", "azure"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "fake":
        yield Backend("fake", FakePlatform("fake", tmp_path / "state.json", NODES), lambda: None)
        return
    if request.param == "azure":
        with aks_estate(request.getfixturevalue("fake_arm"), tmp_path) as estate:
            azure = estate.platform()
            try:
                yield Backend("azure", azure, estate.primary.wait_settled)
            finally:
                azure.close()
        return
    with fake_platform(tmp_path) as (clusters, platform):  # two clusters: primary and dr
        yield Backend("kubernetes", platform, clusters.settle)


def _build(backend: Backend, case: str) -> Fault:
    try:
        return CASES[case](backend.platform, backend.names)
    except UnsupportedCapability as missing:
        pytest.skip(str(missing))


@pytest.mark.parametrize("case", sorted(CASES))
def test_inject_verify_revert(backend: Backend, case: str) -> None:
    platform = backend.platform
    before = snapshot(platform)
    fault = _build(backend, case)
    try:
        fault.prepare()
        assert snapshot(platform) == before, "prepare must not change anything"
        record = fault.undo_record()
        assert record["fault"] == fault.kind and fault.describe() and fault.targets()
        fault.inject()
    except UnsupportedCapability as missing:  # raised before anything was changed
        pytest.skip(str(missing))
    assert snapshot(platform) != before, "the fault must change something observable"
    evidence = fault.verify()
    assert evidence.summary
    fault.revert()
    fault.revert()
    backend.settle()
    after = snapshot(platform)
    if case.startswith("database-failover"):
        # the new primary stays primary; the old one is back as a standby
        assert after["primary"] != before["primary"] and after["stopped_members"] == []
        for key in ("primary", "stopped_members"):
            after.pop(key), before.pop(key)
    assert after == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_rebuilt_from_journal_record_reverts(backend: Backend, case: str) -> None:
    platform = backend.platform
    before = snapshot(platform)
    fault = _build(backend, case)
    try:
        fault.prepare()
        record = fault.undo_record()
        fault.inject()
    except UnsupportedCapability as missing:  # raised before anything was changed
        pytest.skip(str(missing))
    rebuilt = fault_from_record(platform, record)
    assert type(rebuilt) is type(fault) and rebuilt.params() == fault.params()
    rebuilt.revert()
    backend.settle()
    assert snapshot(platform)["nodes"] == before["nodes"]
    after = snapshot(platform)
    if case.startswith("database-failover"):
        assert after["stopped_members"] == []
        after.pop("primary"), before.pop("primary")
    assert after == before


def test_node_freeze_is_not_a_crash(backend: Backend) -> None:
    node = backend.names["node"]
    fault = NodeFreeze(backend.platform, node)
    try:
        fault.inject()
    except UnsupportedCapability as missing:
        pytest.skip(str(missing))
    assert backend.platform.node_state(node) is NodeState.FROZEN  # type: ignore[attr-defined]
    fault.revert()
