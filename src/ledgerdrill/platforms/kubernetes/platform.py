"""``KubernetesPlatform``: one kubeconfig context (and the DR cluster's, ``dr_context``),
capabilities as mixins."""

from __future__ import annotations

from typing import Any, TypeVar

from ledgerdrill.errors import ConfigError, SafetyViolation, UnsupportedCapability
from ledgerdrill.platforms.base import (
    CacheControl,
    CertificateControl,
    DatabaseControl,
    Platform,
    RegionControl,
    ServiceControl,
)
from ledgerdrill.platforms.kubernetes.api import Kube, call, check_allowed, resolve_context
from ledgerdrill.platforms.kubernetes.certificates import CertificateOps
from ledgerdrill.platforms.kubernetes.database import DatabaseOps
from ledgerdrill.platforms.kubernetes.facts import erp_login
from ledgerdrill.platforms.kubernetes.nodes import (
    CONTROL_PLANE,
    REGION,
    ZONE,
    NodeOps,
    docker_problem,
)
from ledgerdrill.platforms.kubernetes.pitr import PitrOps
from ledgerdrill.platforms.kubernetes.plan import plan_lines
from ledgerdrill.platforms.kubernetes.promotion import PromotionLog
from ledgerdrill.platforms.kubernetes.region import RegionOps, Snapshot
from ledgerdrill.platforms.kubernetes.workloads import WorkloadOps
from ledgerdrill.targets import KubernetesPlatformSettings, Target
from ledgerdrill.timeline import Event, Instant

C = TypeVar("C")

_UNSUPPORTED: dict[type, str] = {
    ServiceControl: "pausing one service's processes has no API equivalent "
    "(use node-freeze with node_faults: docker on kind)",
}


def allowed_contexts(
    target: Target, settings: KubernetesPlatformSettings
) -> tuple[str | None, str, str | None]:
    """(kubeconfig, context, dr_context), each context found in the kubeconfig and
    allow-listed; ``SafetyViolation`` before any connection is made (also the CLI's
    preflight, so a plan refuses a wrong context in one line instead of skipping)."""
    kubeconfig = str(target.resolve_path(settings.kubeconfig)) if settings.kubeconfig else None
    where = f"{target.source}: " if target.source else ""
    context = resolve_context(kubeconfig, settings.context)
    dr_context = None
    if settings.dr_context is not None:
        dr_context = resolve_context(kubeconfig, settings.dr_context)
    for name in (context, dr_context):
        try:
            if name is not None:
                check_allowed(name, settings.allowed_contexts)
        except SafetyViolation as exc:
            raise SafetyViolation(f"{where}{exc}") from None
    if dr_context == context:
        raise ConfigError(
            f"{where}platform.dr_context: {dr_context!r} is also platform.context; the DR "
            "region needs its own cluster"
        )
    return kubeconfig, context, dr_context


class KubernetesPlatform(
    NodeOps, WorkloadOps, DatabaseOps, PitrOps, CertificateOps, RegionOps, Platform
):  # fmt: skip
    kind = "kubernetes"

    def __init__(
        self,
        name: str,
        settings: KubernetesPlatformSettings,
        kube: Kube,
        dr_kube: Kube | None = None,
        kubeconfig: str | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self.kube = kube
        self.kubeconfig = kubeconfig  # resolved path; None: $KUBECONFIG or ~/.kube/config
        self.dr_kube = dr_kube  # the DR cluster (region dr), from dr_context
        self._region_names: dict[str, Kube] | None = None
        self._region_snapshots: dict[str, Snapshot] = {}
        self.promotions = PromotionLog()

    @classmethod
    def from_settings(
        cls, target: Target, settings: KubernetesPlatformSettings
    ) -> KubernetesPlatform:
        kubeconfig, context, dr_context = allowed_contexts(target, settings)
        kube = Kube.connect(kubeconfig, context)
        dr_kube = Kube.connect(kubeconfig, dr_context) if dr_context else None
        return cls(target.name, settings, kube, dr_kube, kubeconfig=kubeconfig)

    def capability(self, protocol: type[C]) -> C:
        reason = _UNSUPPORTED.get(protocol)
        missing = {
            DatabaseControl: self.settings.database_cluster is None,
            CertificateControl: self.settings.ingress_tls_secret is None,
            CacheControl: self.settings.cache_selector is None,
        }
        if reason is None and protocol is RegionControl and self.dr_kube is None:
            reason = "no DR cluster: set platform.dr_context to the DR cluster's context"
        if reason is None and missing.get(protocol):
            reason = "not configured in the target file's platform settings"
        if reason is not None:
            raise UnsupportedCapability(self.kind, protocol.__name__, reason)
        return super().capability(protocol)

    def database_witness_gap(self) -> str:
        return ""  # promotion.py: each promotion's replay point, a bound on the loss

    def events_between(self, start: Instant, end: Instant) -> list[Event]:
        return self.promotions.events_between(start, end, self.settings.wait_timeout)

    def describe(self) -> dict[str, object]:
        zones = {z: list(self.nodes_in_zone(z)) for z in self.zones()}
        region = next((n.region for n in self.nodes() if n.region), "primary")
        regions: dict[str, dict[str, list[str]]] = {region: zones}
        if self.dr_kube is not None:
            regions.update(self._dr_zones())
        return {
            **super().describe(),
            "context": self.kube.context,
            "dr_context": self.dr_kube.context if self.dr_kube else None,
            "regions": regions,
            "namespace": self.settings.namespace,
            "node_faults": self._node_faults_note(),
            "nodes_per_zone": zones,
            "protected_nodes": [n.name for n in self.nodes() if n.protected],
            "certificate_evidence": "wire" if self.settings.entry_url else "secret",
            "plan_lines": plan_lines(self),
        }

    def probe_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "namespace": self.settings.namespace,
            # for the kube probe: the same cluster, read-only (lists and watches)
            "kubeconfig": self.kubeconfig or "",
            "kube_context": self.kube.context,
        }
        if self.settings.entry_url:
            facts["entry_url"] = self.settings.entry_url
        if self.settings.database_cluster:
            facts["database_service"] = self.application_database()
        facts.update(erp_login(self))  # login, password, database: the ERP's, from a Secret
        return facts

    def _node_faults_note(self) -> str:
        if self.settings.node_faults != "docker":
            return "api"
        problem = docker_problem()
        return f"docker (not usable here: {problem})" if problem else "docker"

    def _dr_zones(self) -> dict[str, dict[str, list[str]]]:
        """The DR cluster's workers per zone, for the plan (control planes left out)."""
        assert self.dr_kube is not None
        dr = self.dr_kube
        nodes = call(f"{dr.context}: list nodes", dr.core.list_node).items
        region, zones = "dr", dict[str, list[str]]()
        for node in nodes:
            labels = (node.metadata.labels if node.metadata else None) or {}
            if any(key in labels for key in CONTROL_PLANE):
                continue
            region = labels.get(REGION, region)
            zones.setdefault(labels.get(ZONE, "no zone"), []).append(str(node.metadata.name))  # type: ignore[union-attr]
        return {region: {z: sorted(n) for z, n in sorted(zones.items())}}

    def close(self) -> None:
        self.promotions.close()
        self.kube.close()
        if self.dr_kube is not None:
            self.dr_kube.close()
