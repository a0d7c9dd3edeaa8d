"""The Azure backend: AKS node pools (VM scale sets) and PostgreSQL Flexible Server."""

from ledgerdrill.platforms.azure.nodes import AksNode, KubernetesNodeSource, NodeSource
from ledgerdrill.platforms.azure.platform import AzurePlatform

__all__ = ["AksNode", "AzurePlatform", "KubernetesNodeSource", "NodeSource"]
