"""Where AKS nodes come from: an injectable ``NodeSource``.

The Azure backend does not depend on the Kubernetes backend; it only needs each
node's name, zone, ``spec.providerID`` and readiness. ``KubernetesNodeSource`` reads
them with the official ``kubernetes`` client when it is installed; the lead can pass
the Kubernetes backend's own node list instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ledgerdrill.errors import PlatformError

ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class AksNode:
    name: str
    zone: str  # the label value, e.g. "westeurope-1"; "0" or "" when not zonal
    provider_id: str
    ready: bool


class NodeSource(Protocol):
    def list_nodes(self) -> Sequence[AksNode]: ...


def arm_zone(label: str) -> str:
    """``westeurope-1`` (the node label) -> ``1`` (the zone ARM reports for the VM)."""
    return label.rsplit("-", 1)[-1] if label else ""


class StaticNodeSource:
    """A fixed node list whose readiness can be changed (tests, or a composed backend)."""

    def __init__(self, nodes: Sequence[AksNode]) -> None:
        self._nodes = {n.name: n for n in nodes}

    def list_nodes(self) -> Sequence[AksNode]:
        return list(self._nodes.values())

    def set_ready(self, name: str, ready: bool) -> None:
        node = self._nodes[name]
        self._nodes[name] = AksNode(node.name, node.zone, node.provider_id, ready)


class KubernetesNodeSource:
    """Nodes read through the official ``kubernetes`` client (kubeconfig or in-cluster)."""

    def __init__(self, context: str | None = None) -> None:
        try:
            # imported by name: the client is optional and ships no type information
            client: Any = importlib.import_module("kubernetes.client")
            config: Any = importlib.import_module("kubernetes.config")
        except ImportError as exc:
            raise PlatformError(
                "reading AKS nodes needs the 'kubernetes' package (pip install kubernetes) "
                "or a NodeSource from the Kubernetes backend"
            ) from exc
        try:
            config.load_kube_config(context=context)
        except Exception:
            config.load_incluster_config()
        self._apis: list[Any] = [client.CoreV1Api()]
        self._owned: list[Any] = []

    @classmethod
    def of(cls, *core_apis: Any, owned: Sequence[Any] = ()) -> KubernetesNodeSource:
        """Nodes of one or more clusters through ``CoreV1Api`` objects (the AKS cluster's,
        held by the Kubernetes backend, and the dr cluster's); ``owned`` ones are closed
        by ``close``."""
        source = cls.__new__(cls)
        source._apis = [*core_apis, *owned]
        source._owned = list(owned)
        return source

    def close(self) -> None:
        """Close the API clients this source opened itself (the dr context's)."""
        for api in self._owned:
            api.api_client.close()

    def list_nodes(self) -> Sequence[AksNode]:
        seen: dict[str, AksNode] = {}
        for api in self._apis:
            try:
                items = api.list_node().items
            except Exception as exc:
                raise PlatformError(f"listing Kubernetes nodes failed: {exc}") from exc
            for item in items:
                node = _from_v1(item)
                seen.setdefault(node.name, node)
        return list(seen.values())


def _from_v1(node: Any) -> AksNode:
    labels = node.metadata.labels or {}
    conditions = (node.status.conditions if node.status else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return AksNode(
        name=node.metadata.name,
        zone=str(labels.get(ZONE_LABEL, "")),
        provider_id=str((node.spec.provider_id if node.spec else "") or ""),
        ready=ready,
    )
