"""RegionControl across two fake clusters: outage, the DR runbook, fail-back, journal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledgerdrill.errors import SafetyViolation
from ledgerdrill.faults import RegionOutage, fault_from_record
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.kubernetes import KubernetesPlatform

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import DR, PRIMARY, fake_clusters, fake_platform, target_for

CNPG = "postgresql.cnpg.io/clusters"


def _replicas(fake: object, name: str) -> int:
    dep = fake.store.get("apps/deployments", "ledgerdrill", name)  # type: ignore[attr-defined]
    return int(dep["spec"]["replicas"])


def _database(fake: object) -> dict:  # type: ignore[type-arg]
    return fake.store.get(CNPG, "ledgerdrill", "ledgerdrill-db")  # type: ignore[attr-defined,no-any-return]


def _until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.05)


def test_a_promoted_replica_cluster_cannot_follow_its_source_again(tmp_path: Path) -> None:
    """CloudNativePG's docs (replica_cluster.md): disabling replication "is an
    irreversible operation"; the fake's operator models it: switched back on after a
    promotion, the cluster never becomes ready and says to re-clone it."""
    with fake_clusters(tmp_path) as clusters:
        dr = clusters.dr
        timeline = _database(dr)["status"]["timelineID"]
        promote = {"spec": {**_database(dr)["spec"], "replica": {"enabled": False}}}
        dr.store.update(CNPG, "ledgerdrill", "ledgerdrill-db", lambda c: {**c, **promote})
        _until(lambda: _database(dr)["status"]["timelineID"] == timeline + 1)
        back = {"spec": {**_database(dr)["spec"], "replica": {"enabled": True}}}
        dr.store.update(CNPG, "ledgerdrill", "ledgerdrill-db", lambda c: {**c, **back})
        _until(lambda: "re-clone" in _database(dr)["status"].get("phase", ""))
        assert _database(dr)["status"]["readyInstances"] == 0


def test_regions_come_from_each_clusters_node_labels(tmp_path: Path) -> None:
    with fake_platform(tmp_path) as (_, platform):
        assert platform.regions() == ["primary", "dr"]
        assert platform.region_state("primary") is NodeState.RUNNING
        # the cold DR serves nothing yet, but its replica cluster runs: the region is up
        assert platform.region_state("dr") is NodeState.RUNNING
        regions = platform.describe()["regions"]
        assert regions["dr"]["zone-b"] == ["ledgerdrill-dr-worker3", "ledgerdrill-dr-worker4"]  # type: ignore[index]


def test_outage_failover_and_failback_through_the_journal_record(tmp_path: Path) -> None:
    with fake_platform(tmp_path) as (clusters, platform):
        fault = RegionOutage(platform, "primary")
        fault.prepare()
        record = fault.undo_record()
        side = record["undo"]["snapshot"]["regions"]
        # the previous state is in the record before anything changes
        assert side["primary"]["deployments"] == {"ledgerdrill-erp": 3, "redis": 1}
        assert side["dr"] == {"context": DR, "deployments": {"ledgerdrill-erp": 0, "redis": 1},
                              "hibernation": None, "replica": True}  # fmt: skip
        fault.inject()
        primary = clusters.primary
        assert _replicas(primary, "ledgerdrill-erp") == 0
        assert _database(primary)["metadata"]["annotations"]["cnpg.io/hibernation"] == "on"
        assert (
            primary.store.list("core/pods", "ledgerdrill", "cnpg.io/cluster=ledgerdrill-db") == []
        )
        assert fault.verify().summary == "region primary is down"
        # described as read before the change, so a run's action matches its plan
        assert "scale deployment ledgerdrill/ledgerdrill-erp 3→0" in fault.describe()

        timeline = _database(clusters.dr)["status"]["timelineID"]
        promoted_uid = _database(clusters.dr)["metadata"]["uid"]
        platform.fail_over_to("dr")
        dr_db = _database(clusters.dr)
        assert dr_db["spec"]["replica"]["enabled"] is False
        assert dr_db["status"]["timelineID"] == timeline + 1
        assert _replicas(clusters.dr, "ledgerdrill-erp") == 3  # what the primary ran

        # a new process (cleanup after a SIGKILL) reverts from the journal record alone
        other = KubernetesPlatform(platform.name, platform.settings, platform.kube,
                                   platform.dr_kube)  # fmt: skip
        fault_from_record(other, record).revert()
        assert _replicas(clusters.dr, "ledgerdrill-erp") == 0
        # re-cloned, not flipped back: a new cluster in replica mode, ready, no drill mark
        dr_db = _database(clusters.dr)
        assert dr_db["spec"]["replica"]["enabled"] is True
        assert dr_db["metadata"]["uid"] != promoted_uid
        assert "ledgerdrill.io/promoted-by-drill" not in (dr_db["metadata"].get("annotations") or {})
        assert dr_db["status"]["readyInstances"] == 3
        assert _replicas(primary, "ledgerdrill-erp") == 3
        assert "cnpg.io/hibernation" not in (
            _database(primary)["metadata"].get("annotations") or {}
        )
        assert platform.region_state("primary") is NodeState.RUNNING
        clusters.settle()
        status = _database(primary)["status"]
        assert status["readyInstances"] == 3 and status["currentPrimary"] == "ledgerdrill-db-1"


def test_restore_without_a_journal_uses_the_annotations_written_with_the_change(
    tmp_path: Path,
) -> None:
    with fake_platform(tmp_path) as (clusters, platform):
        platform.region_outage("primary")
        platform.fail_over_to("dr")
        notes = clusters.primary.store.get("apps/deployments", "ledgerdrill", "redis")["metadata"]
        assert notes["annotations"]["ledgerdrill.io/replicas-before-drill"] == "1"
        fresh = KubernetesPlatform(platform.name, platform.settings, platform.kube,
                                   platform.dr_kube)  # fmt: skip
        fresh.restore_region("primary")
        fresh.restore_region("primary")  # idempotent
        assert _replicas(clusters.primary, "redis") == 1
        assert _replicas(clusters.primary, "ledgerdrill-erp") == 3
        assert _replicas(clusters.dr, "ledgerdrill-erp") == 0
        assert _database(clusters.dr)["spec"]["replica"]["enabled"] is True
        leftovers = [
            d["metadata"]["name"]
            for fake in (clusters.primary, clusters.dr)
            for d in fake.store.list("apps/deployments", "ledgerdrill")
            if "ledgerdrill.io/replicas-before-drill" in (d["metadata"].get("annotations") or {})
        ]
        assert leftovers == []


def test_a_dr_context_outside_the_allowlist_is_refused(tmp_path: Path) -> None:
    with fake_clusters(tmp_path) as clusters:
        target = target_for(clusters.primary, tmp_path, kubeconfig=str(clusters.kubeconfig),
                            context=PRIMARY, dr_context=DR,
                            allowed_contexts=["kind-ledgerdrill"])  # fmt: skip
        with pytest.raises(SafetyViolation, match="'kind-ledgerdrill-dr' is not allowed"):
            KubernetesPlatform.from_settings(target, target.platform)  # type: ignore[arg-type]
