"""The lines ``ledgerdrill plan`` shows for a Kubernetes target beside the nodes per
zone: which contexts, what is never touched, how node faults act, what the database,
certificate and DR steps would change. Reads only; a part that cannot be read says so
instead of failing the plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.platforms.kubernetes.archive import wal_archive

if TYPE_CHECKING:
    from ledgerdrill.platforms.kubernetes.platform import KubernetesPlatform


def plan_lines(platform: KubernetesPlatform) -> list[str]:
    settings = platform.settings
    lines = [
        f"context {platform.kube.context}, namespace {settings.namespace}"
        + (
            f"; DR context {platform.dr_kube.context}"
            if platform.dr_kube
            else "; no DR context (region outage skips)"
        )
    ]
    protected = [n.name for n in platform.nodes() if n.protected]
    lines.append(f"never touched: {', '.join(protected) or 'no control-plane node found'}")
    if settings.node_faults == "docker":
        lines.append(
            f"node faults: {platform._node_faults_note()}: crash = docker kill, "
            "freeze = docker pause of the node container"
        )
    else:
        lines.append(
            "node faults: api: crash = cordon + NoExecute taint + pod deletion; freeze unsupported"
        )
    for part in (_database, _certificate, _dr_runbook):
        try:
            lines += part(platform)
        except LedgerdrillError as exc:
            lines.append(f"{part.__name__.strip('_')} unavailable: {exc}")
    return lines


def _database(platform: KubernetesPlatform) -> list[str]:
    if platform.settings.database_cluster is None:
        return []
    topology = platform.database_topology()
    members = ", ".join(f"{m.name} {m.role} on {m.node or '?'}" for m in topology.members)
    cluster = platform._cluster()
    archive = wal_archive(cluster)
    backups = (
        f"PITR restores from {archive.describe()} into a new Cluster"
        if archive
        else "no WAL archive (Barman Cloud plugin or barmanObjectStore): PITR skips"
    )
    return [
        f"database CNPG cluster {platform.settings.database_cluster}: {members}; "
        f"the ERP uses {platform.application_database()}; {backups}"
    ]


def _certificate(platform: KubernetesPlatform) -> list[str]:
    secret = platform.settings.ingress_tls_secret
    if secret is None:
        return []
    evidence = (
        f"read off the wire at {platform.settings.entry_url}"
        if (platform.settings.entry_url)
        else "read from the secret (no entry_url)"
    )
    return [f"certificate: TLS secret {platform.settings.namespace}/{secret}, served {evidence}"]


def _dr_runbook(platform: KubernetesPlatform) -> list[str]:
    if platform.dr_kube is None:
        return []
    regions = platform.regions()
    dr = regions[-1]
    kube = platform._side(dr)
    database = platform._database(kube)
    replica = ((database or {}).get("spec") or {}).get("replica") or {}
    promote = (
        f"promote CNPG replica cluster {platform.settings.database_cluster} "
        f"(spec.replica.enabled=false, following {replica.get('source')})"
        if replica.get("enabled")
        else "its database is not a replica cluster: nothing to promote"
    )
    erp = platform._deployments(kube).get(platform.settings.erp_deployment)
    return [
        f"DR runbook in {kube.context} (region {dr}): {promote}; scale "
        f"{platform.settings.erp_deployment} up from {erp if erp is not None else 'missing'}"
    ]
