"""The Kubernetes backend against the fake API server: safety, locking, drains, watches."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kubernetes import client, config, watch
from ledgerdrill.errors import PlatformError, SafetyViolation
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.registry import build_platform

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import fake_cluster, target_for


def test_context_outside_the_allowlist_is_refused_before_connecting(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, _):
        fake.kubeconfig(tmp_path / "prod", contexts=("aks-prod",))
        target = target_for(fake, tmp_path, kubeconfig=str(tmp_path / "prod"))
        with pytest.raises(SafetyViolation, match=r"kube context 'aks-prod' is not allowed"):
            build_platform(target)


def test_plan_facts_nodes_per_zone_and_protected_control_plane(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_, platform):
        facts = platform.describe()
        assert facts["nodes_per_zone"] == {
            "zone-a": ["ledgerdrill-worker", "ledgerdrill-worker2"],
            "zone-b": ["ledgerdrill-worker3", "ledgerdrill-worker4"],
            "zone-c": ["ledgerdrill-worker5", "ledgerdrill-worker6"],
        }
        assert facts["protected_nodes"] == ["ledgerdrill-control-plane"]
        with pytest.raises(PlatformError, match="control-plane"):
            platform.crash_node("ledgerdrill-control-plane")


def test_put_with_a_stale_resource_version_is_a_409_conflict(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_, platform):
        core = platform.kube.core
        stale = core.read_node("ledgerdrill-worker")
        core.patch_node("ledgerdrill-worker", {"metadata": {"labels": {"x": "1"}}},
                        _content_type="application/merge-patch+json")  # fmt: skip
        with pytest.raises(client.ApiException) as err:
            core.replace_node("ledgerdrill-worker", stale)
        assert err.value.status == 409 and '"reason": "Conflict"' in err.value.body


def test_strategic_merge_on_a_custom_resource_is_415_like_the_real_api(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        with pytest.raises(client.ApiException) as err:
            platform.kube.custom.patch_namespaced_custom_object(
                "postgresql.cnpg.io", "v1", "ledgerdrill", "clusters", "ledgerdrill-db",
                {"spec": {"instances": 3}},
                _content_type="application/strategic-merge-patch+json",
            )  # fmt: skip
        assert err.value.status == 415
        # the client turns a dict "json-patch" into a strategic merge for built-ins
        platform.kube.core.patch_node("ledgerdrill-worker", {"metadata": {"labels": {"a": "b"}}})
        assert fake.requests[-1][2] == "application/strategic-merge-patch+json"


def test_drain_evicts_and_pods_are_rescheduled_elsewhere(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        node = next(
            p["spec"]["nodeName"] for p in fake.store.list("core/pods", "ledgerdrill",
                                                           "app.kubernetes.io/name=ledgerdrill-erp")
        )  # fmt: skip
        platform.drain_node(node)
        assert platform.node_state(node) is NodeState.DRAINED
        fake.wait_settled()
        assert all(p["spec"]["nodeName"] != node for p in fake.store.list("core/pods", None))
        evictions = [r for r in fake.requests if r[1].endswith("/eviction")]
        assert evictions and all(r[0] == "POST" for r in evictions)
        platform.restore_node(node)
        assert platform.node_state(node) is NodeState.RUNNING


def test_drain_blocked_by_a_pdb_retries_429_and_never_forces(tmp_path: Path) -> None:
    with fake_cluster(tmp_path, drain={"timeout": "600ms", "retry_interval": "100ms"}) as (
        fake, platform,
    ):  # fmt: skip
        fake.store.update("policy/poddisruptionbudgets", "ledgerdrill", "ledgerdrill-erp",
                          lambda pdb: {**pdb, "spec": {**pdb["spec"], "minAvailable": 3}})  # fmt: skip
        pod = fake.store.list("core/pods", "ledgerdrill", "app.kubernetes.io/name=ledgerdrill-erp")[
            0
        ]
        with pytest.raises(PlatformError, match="PodDisruptionBudgets still refuse"):
            platform.drain_node(pod["spec"]["nodeName"])
        assert fake.store.get("core/pods", "ledgerdrill", pod["metadata"]["name"]) is not None
        refused = [r for r in fake.requests if r[1].endswith(f"{pod['metadata']['name']}/eviction")]
        assert len(refused) >= 3  # retried, not forced
        assert not any(r[0] == "DELETE" and "/pods/" in r[1] for r in fake.requests)
        platform.restore_node(pod["spec"]["nodeName"])


def test_a_pod_under_two_budgets_is_refused_like_the_real_api_and_the_drain_says_why(
    tmp_path: Path,
) -> None:
    """Upstream pkg/registry/core/pod/storage/eviction.go: more than one matching
    PodDisruptionBudget is a 500, whatever the budgets allow. The drain stops at once
    with the reason (retrying cannot help) and never deletes the pod."""
    with fake_cluster(tmp_path, drain={"timeout": "5s", "retry_interval": "100ms"}) as (
        fake, platform,
    ):  # fmt: skip
        erp = {"app.kubernetes.io/name": "ledgerdrill-erp"}
        fake.store.create("policy/poddisruptionbudgets", "ledgerdrill", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "team-wide"},
            "spec": {"maxUnavailable": 3, "selector": {"matchLabels": erp}},
        })  # fmt: skip
        pod = fake.store.list("core/pods", "ledgerdrill", "app.kubernetes.io/name=ledgerdrill-erp")[
            0
        ]
        api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
        with pytest.raises(client.ApiException) as raw:
            client.CoreV1Api(api).create_namespaced_pod_eviction(
                pod["metadata"]["name"], "ledgerdrill",
                client.V1Eviction(metadata=client.V1ObjectMeta(name=pod["metadata"]["name"])),
            )  # fmt: skip
        assert raw.value.status == 500
        assert "more than one PodDisruptionBudget" in raw.value.body
        assert '"reason"' not in raw.value.body  # upstream sets none
        with pytest.raises(PlatformError, match="covered by more than one PodDisruptionBudget"):
            platform.drain_node(pod["spec"]["nodeName"])
        assert fake.store.get("core/pods", "ledgerdrill", pod["metadata"]["name"]) is not None
        assert not any(r[0] == "DELETE" and "/pods/" in r[1] for r in fake.requests)
        platform.restore_node(pod["spec"]["nodeName"])


def test_watch_stream_reports_a_crash(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_fake, platform):
        api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
        core = client.CoreV1Api(api)
        rv = core.list_namespaced_pod("ledgerdrill").metadata.resource_version
        platform.crash_node("ledgerdrill-worker3")
        seen = [
            (e["type"], e["object"].spec.node_name)
            for e in watch.Watch().stream(
                core.list_namespaced_pod, "ledgerdrill", resource_version=rv, timeout_seconds=1
            )
        ]
        assert ("DELETED", "ledgerdrill-worker3") in seen
        assert any(t == "ADDED" and n != "ledgerdrill-worker3" for t, n in seen)
        platform.restore_node("ledgerdrill-worker3")
        api.close()
