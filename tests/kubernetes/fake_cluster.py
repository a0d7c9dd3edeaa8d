"""Start the fake API servers with the reference stack and build the backend against them.

Two fake clusters, as ``make kind-up`` makes two kind clusters: ``kind-ledgerdrill``
(region primary) and ``kind-ledgerdrill-dr`` (region dr: a cold ERP and a CloudNativePG
replica cluster), in one kubeconfig with a context each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kube_witness import assert_nothing_dropped
from ledgerdrill.platforms.kubernetes import KubernetesPlatform
from ledgerdrill.targets import Target
from ledgerdrill.testing.fakeapi.kubeconfig import write_kubeconfig
from ledgerdrill.testing.fakeapi.seed import seed_reference_stack
from ledgerdrill.testing.fakeapi.server import FakeKubernetes

PRIMARY, DR = "kind-ledgerdrill", "kind-ledgerdrill-dr"
TARGET: dict[str, Any] = {
    "name": "kind-fake",
    "environment": "development",
    "tiers": {"finance-core": {"rto": "5m", "rpo": "0s"}},
    "safety": {"allow": {"nodes": ["ledgerdrill-worker*"], "zones": ["zone-*"]}},
}


def target_for(fake: FakeKubernetes, folder: Path, **platform: Any) -> Target:
    kubeconfig = fake.kubeconfig(folder / "kubeconfig")
    settings = {
        "kind": "kubernetes",
        "kubeconfig": str(kubeconfig),
        "entry_url": f"https://127.0.0.1:{fake.ingress_port}",
        "poll_interval": "50ms",
        "wait_timeout": "15s",
        "drain": {"timeout": "5s", "retry_interval": "100ms"},
        **platform,
    }
    return Target.model_validate({**TARGET, "platform": settings})


@dataclass
class FakeClusters:
    primary: FakeKubernetes
    dr: FakeKubernetes
    kubeconfig: Path

    def settle(self) -> None:
        self.primary.wait_settled()
        self.dr.wait_settled()


def start_fake(*, dr: bool = False) -> FakeKubernetes:
    fake = FakeKubernetes(ready_delay=0.05, reschedule_delay=0.6).start()
    if dr:
        seed_reference_stack(fake, cluster="ledgerdrill-dr", region="dr", erp_replicas=0,
                             replica_of="ledgerdrill-db")  # fmt: skip
    else:
        seed_reference_stack(fake)
    return fake


@contextmanager
def fake_clusters(folder: Path) -> Iterator[FakeClusters]:
    """Both fake clusters, settled, and a kubeconfig naming them (current: primary)."""
    primary = start_fake()
    try:
        dr = start_fake(dr=True)
        try:
            clusters = FakeClusters(
                primary, dr, write_kubeconfig(folder / "kubeconfig-2", {PRIMARY: primary, DR: dr})
            )
            clusters.settle()
            yield clusters
            assert_nothing_dropped(primary, dr)
        finally:
            dr.stop()
    finally:
        primary.stop()


@contextmanager
def fake_platform(
    folder: Path, **platform: Any
) -> Iterator[tuple[FakeClusters, KubernetesPlatform]]:
    """The backend on both fake clusters (``dr_context`` set)."""
    with fake_clusters(folder) as clusters:
        target = target_for(clusters.primary, folder, kubeconfig=str(clusters.kubeconfig),
                            context=PRIMARY, dr_context=DR, **platform)  # fmt: skip
        settings = target.platform
        assert settings.kind == "kubernetes"
        backend = KubernetesPlatform.from_settings(target, settings)  # type: ignore[arg-type]
        try:
            yield clusters, backend
        finally:
            backend.close()


@contextmanager
def fake_cluster(
    folder: Path, **platform: Any
) -> Iterator[tuple[FakeKubernetes, KubernetesPlatform]]:
    """One fake cluster, no DR region."""
    fake = start_fake()
    try:
        fake.wait_settled()
        target = target_for(fake, folder, **platform)
        settings = target.platform
        assert settings.kind == "kubernetes"
        backend = KubernetesPlatform.from_settings(target, settings)  # type: ignore[arg-type]
        try:
            yield fake, backend
            assert_nothing_dropped(fake)
        finally:
            backend.close()
    finally:
        fake.stop()
