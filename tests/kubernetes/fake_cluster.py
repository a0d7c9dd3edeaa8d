"""Start the fake API server with the reference stack and build the backend against it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledgerdrill.platforms.kubernetes import KubernetesPlatform
from ledgerdrill.platforms.kubernetes.fakeapi.seed import seed_reference_stack
from ledgerdrill.platforms.kubernetes.fakeapi.server import FakeKubernetes
from ledgerdrill.targets import Target

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


@contextmanager
def fake_cluster(
    folder: Path, **platform: Any
) -> Iterator[tuple[FakeKubernetes, KubernetesPlatform]]:
    fake = FakeKubernetes(ready_delay=0.05, reschedule_delay=0.6).start()
    try:
        seed_reference_stack(fake)
        fake.wait_settled()
        target = target_for(fake, folder, **platform)
        settings = target.platform
        assert settings.kind == "kubernetes"
        backend = KubernetesPlatform.from_settings(target, settings)  # type: ignore[arg-type]
        try:
            yield fake, backend
        finally:
            backend.close()
    finally:
        fake.stop()
