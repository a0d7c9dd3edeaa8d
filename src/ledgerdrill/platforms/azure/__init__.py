"""The Azure backend: AKS node pools (VM scale sets) and PostgreSQL Flexible Server.

Its names load on first use, so that ``platforms.azure.settings`` (read with every target
file) does not pull in the backend itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerdrill.platforms.azure.nodes import AksNode, KubernetesNodeSource, NodeSource
    from ledgerdrill.platforms.azure.platform import AzurePlatform

__all__ = ["AksNode", "AzurePlatform", "KubernetesNodeSource", "NodeSource"]


def __getattr__(name: str) -> Any:
    if name == "AzurePlatform":
        from ledgerdrill.platforms.azure.platform import AzurePlatform

        return AzurePlatform
    if name in {"AksNode", "KubernetesNodeSource", "NodeSource"}:
        from ledgerdrill.platforms.azure import nodes

        return getattr(nodes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
