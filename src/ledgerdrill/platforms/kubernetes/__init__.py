"""The Kubernetes backend: kind clusters locally, AKS on game days.

Built on the official ``kubernetes`` client. Module per capability: ``nodes`` (NodeControl,
ZoneControl), ``workloads`` (ReleaseControl, CacheControl), ``database`` (CloudNativePG),
``certificates`` (the ingress TLS secret). The fake API server for tests is
``ledgerdrill.testing.fakeapi``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerdrill.platforms.kubernetes.platform import KubernetesPlatform

__all__ = ["KubernetesPlatform"]


def __getattr__(name: str) -> Any:
    # loaded on first use: platforms.kubernetes.settings is read with every target file
    if name == "KubernetesPlatform":
        from ledgerdrill.platforms.kubernetes.platform import KubernetesPlatform

        return KubernetesPlatform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
