"""``KubernetesPlatform``: one kubeconfig context, capabilities as mixins."""

from __future__ import annotations

from typing import Any, TypeVar

from ledgerdrill.errors import UnsupportedCapability
from ledgerdrill.platforms.base import (
    CacheControl,
    CertificateControl,
    DatabaseControl,
    Platform,
    RegionControl,
    ServiceControl,
)
from ledgerdrill.platforms.kubernetes.api import Kube, check_allowed, resolve_context
from ledgerdrill.platforms.kubernetes.certificates import CertificateOps
from ledgerdrill.platforms.kubernetes.database import DatabaseOps
from ledgerdrill.platforms.kubernetes.nodes import NodeOps
from ledgerdrill.platforms.kubernetes.workloads import WorkloadOps
from ledgerdrill.targets import KubernetesPlatformSettings, Target

C = TypeVar("C")

_UNSUPPORTED = {
    RegionControl: "the DR region (dr_context: scale the primary to zero, promote a "
    "CloudNativePG replica cluster) is not implemented yet",
    ServiceControl: "pausing one service's processes has no API equivalent "
    "(use node-freeze with node_faults: docker on kind)",
}


class KubernetesPlatform(NodeOps, WorkloadOps, DatabaseOps, CertificateOps, Platform):
    kind = "kubernetes"

    def __init__(self, name: str, settings: KubernetesPlatformSettings, kube: Kube) -> None:
        super().__init__(name)
        self.settings = settings
        self.kube = kube

    @classmethod
    def from_settings(
        cls, target: Target, settings: KubernetesPlatformSettings
    ) -> KubernetesPlatform:
        kubeconfig = str(target.resolve_path(settings.kubeconfig)) if settings.kubeconfig else None
        context = resolve_context(kubeconfig, settings.context)
        check_allowed(context, settings.allowed_contexts)  # before any connection is made
        return cls(target.name, settings, Kube.connect(kubeconfig, context))

    def capability(self, protocol: type[C]) -> C:
        reason = _UNSUPPORTED.get(protocol)
        missing = {
            DatabaseControl: self.settings.database_cluster is None,
            CertificateControl: self.settings.ingress_tls_secret is None,
            CacheControl: self.settings.cache_selector is None,
        }
        if reason is None and missing.get(protocol):
            reason = "not configured in the target file's platform settings"
        if reason is not None:
            raise UnsupportedCapability(self.kind, protocol.__name__, reason)
        return super().capability(protocol)

    def describe(self) -> dict[str, object]:
        zones = {z: list(self.nodes_in_zone(z)) for z in self.zones()}
        return {
            **super().describe(),
            "context": self.kube.context,
            "namespace": self.settings.namespace,
            "node_faults": self.settings.node_faults,
            "nodes_per_zone": zones,
            "protected_nodes": [n.name for n in self.nodes() if n.protected],
            "certificate_evidence": "wire" if self.settings.entry_url else "secret",
        }

    def probe_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"namespace": self.settings.namespace}
        if self.settings.entry_url:
            facts["entry_url"] = self.settings.entry_url
        if self.settings.database_cluster:
            facts["database"] = self.application_database()
        return facts

    def close(self) -> None:
        self.kube.close()
