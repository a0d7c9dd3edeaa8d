"""The ``kube`` probe against the fake API server: watches keep its state, a sample only
reads it (never blocks past its timeout, never raises)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import config
from ledgerdrill.probes.catalogue import Catalogue, build_probes
from ledgerdrill.probes.kube import KubeProbe
from ledgerdrill.timeline import Sample, SystemClock, Timeline

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import fake_cluster

NS = "ledgerdrill"


def _probe(kubeconfig: Path, **options: Any) -> KubeProbe:
    api = config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
    return KubeProbe("cluster", api, NS, deployments=["ledgerdrill-erp"],
                     watch_timeout_s=2, **options)  # fmt: skip


def _until(probe: KubeProbe, want: Callable[[Sample], bool], timeout_s: float = 5.0) -> Sample:
    """Sample until ``want`` holds: the watch delivers changes asynchronously."""
    timeline = Timeline(SystemClock())
    deadline = time.monotonic() + timeout_s
    while True:
        sample = probe.sample(timeline, 0.5)
        if want(sample) or time.monotonic() > deadline:
            return sample
        time.sleep(0.05)


def _set_ready(fake: Any, node: str, status: str) -> None:
    def change(n: dict[str, Any]) -> dict[str, Any]:
        for c in n["status"]["conditions"]:
            if c["type"] == "Ready":
                c["status"] = status
        return n

    fake.store.update("core/nodes", "", node, change)


def test_healthy_then_a_node_goes_not_ready_and_back(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, _):
        probe = _probe(tmp_path / "kubeconfig")
        try:
            first = _until(probe, lambda s: s.ok)
            assert first.ok and first.detail == "6/6 nodes Ready, ledgerdrill-erp 3/3"
            lists = [r for r in fake.requests if r[1] == "/api/v1/nodes"]
            _set_ready(fake, "ledgerdrill-worker3", "False")
            failed = _until(probe, lambda s: not s.ok)
            assert not failed.ok and failed.detail == "NotReady: ledgerdrill-worker3"
            assert failed.metrics["nodes_ready"] == 5
            _set_ready(fake, "ledgerdrill-worker3", "True")
            assert _until(probe, lambda s: s.ok).ok
            # the state came from the watch stream, not from listing again per sample
            assert len([r for r in fake.requests if r[1] == "/api/v1/nodes"]) <= len(lists) + 3
        finally:
            probe.close()


def test_a_deployment_scaled_to_zero_fails(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_fake, platform):
        probe = _probe(tmp_path / "kubeconfig")
        try:
            assert _until(probe, lambda s: s.ok).ok
            platform.kube.apps.patch_namespaced_deployment(
                "ledgerdrill-erp", NS, {"spec": {"replicas": 0}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
            failed = _until(probe, lambda s: "scaled to zero" in s.detail)
            assert not failed.ok and failed.detail == "ledgerdrill-erp scaled to zero"
        finally:
            probe.close()


def _restart(fake: Any) -> str:
    pod = fake.store.list("core/pods", NS, "app.kubernetes.io/name=redis")[0]

    def bump(p: dict[str, Any]) -> dict[str, Any]:
        p["status"]["containerStatuses"][0]["restartCount"] += 1
        return p

    fake.store.update("core/pods", NS, pod["metadata"]["name"], bump)
    return str(pod["metadata"]["name"])


def test_a_restart_is_a_warning_by_default_and_a_failure_when_asked(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, _):
        for policy, ok in (("warn", True), ("fail", False)):
            probe = _probe(tmp_path / "kubeconfig", pod_selector="app.kubernetes.io/name=redis",
                           restarts=policy)  # fmt: skip
            try:
                assert _until(probe, lambda s: s.ok).ok
                name = _restart(fake)
                seen = _until(probe, lambda s: bool(s.warning))
                assert seen.warning.startswith(f"restarted: {name} +1") and seen.ok is ok
                assert _until(probe, lambda s: not s.warning).ok  # reported once
            finally:
                probe.close()


def test_an_unreachable_api_server_fails_within_the_timeout(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, _):
        probe = _probe(tmp_path / "kubeconfig")
        assert _until(probe, lambda s: s.ok).ok
        fake.stop()
        failed = _until(probe, lambda s: not s.ok, timeout_s=10)
        assert not failed.ok and "watching" in failed.detail
        started = time.monotonic()
        probe.sample(Timeline(SystemClock()), 0.2)
        assert time.monotonic() - started < 0.3
        probe.close()


def test_never_listed_yet_is_a_failed_sample_not_a_hang(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, _):
        fake.stop()  # nothing answers at all
        probe = _probe(tmp_path / "kubeconfig")
        started = time.monotonic()
        sample = probe.sample(Timeline(SystemClock()), 0.3)
        assert time.monotonic() - started < 0.5
        assert not sample.ok and sample.detail.startswith("no nodes listed yet")
        probe.close()


def test_the_catalogue_builds_it_from_the_platforms_facts(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_, platform):
        catalogue = Catalogue.model_validate(
            {"probes": [{"name": "cluster", "kind": "kube", "deployments": ["ledgerdrill-erp"]}]}
        )
        (probe,) = build_probes(catalogue, platform.probe_facts(), "probes/kind.yaml")
        assert isinstance(probe, KubeProbe)
        try:
            assert _until(probe, lambda s: s.ok).ok
        finally:
            probe.close()


def test_probes_kind_yaml_builds_from_the_platforms_own_facts(tmp_path: Path) -> None:
    from ledgerdrill.probes.catalogue import build_canary, load_catalogue

    path = Path(__file__).parents[2] / "probes/kind.yaml"
    with fake_cluster(tmp_path) as (_, platform):
        facts = platform.probe_facts()
        # the login comes from the Secret ledgerdrill-erp-login, not from a file
        assert (facts["login"], facts["database"]) == ("accountant", "ledgerdrill")
        catalogue = load_catalogue(path)
        probes = build_probes(catalogue, facts, path)
        assert [p.name for p in probes] == ["post-journal-entry", "erp-health", "cluster-health"]
        assert build_canary(catalogue, facts, path, "run-1") is not None
        for probe in probes:
            close = getattr(probe, "close", None)
            if close is not None:
                close()
