"""The Kubernetes backend's settings in a target file (``platform.kind: kubernetes``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerdrill.durations import Duration
from ledgerdrill.settings_model import Strict


class KubernetesDrainSettings(Strict):
    """How a node drain evicts: through the Eviction API, honouring PodDisruptionBudgets."""

    timeout: Duration = Field(default=120.0, description="give up (never force) after this")
    retry_interval: Duration = Field(
        default=2.0, description="wait between eviction attempts a PDB refused (HTTP 429)"
    )
    grace_period: int | None = Field(
        default=None, ge=0, description="pod termination grace (default: each pod's own)"
    )


class KubernetesPlatformSettings(Strict):
    """A Kubernetes cluster reached through a kubeconfig context (kind locally, AKS on game
    days). Credentials stay in the kubeconfig; this file names only the path and context."""

    kind: Literal["kubernetes"] = "kubernetes"
    kubeconfig: str | None = Field(
        default=None, description="kubeconfig path (default: $KUBECONFIG or ~/.kube/config)"
    )
    context: str | None = Field(default=None, description="context (default: current-context)")
    allowed_contexts: list[str] = Field(
        default_factory=lambda: ["kind-*"],
        description="glob patterns of contexts faults may act on; default only kind clusters",
    )
    namespace: str = "ledgerdrill"
    database_namespace: str | None = Field(default=None, description="default: namespace")
    erp_deployment: str = "ledgerdrill-erp"
    erp_container: str = "erp"
    erp_selector: str = "app.kubernetes.io/name=ledgerdrill-erp"
    database_cluster: str | None = Field(
        default="ledgerdrill-db", description="CloudNativePG Cluster name; null: no database"
    )
    cache_selector: str | None = Field(
        default="app.kubernetes.io/name=redis", description="label selector of the cache pods"
    )
    ingress_tls_secret: str | None = Field(
        default="ledgerdrill-tls", description="the ingress's TLS secret; null: no certificates"
    )
    entry_url: str | None = Field(
        default=None, description="https URL of the ingress: certificates are read from the wire"
    )
    node_faults: Literal["api", "docker"] = Field(
        default="api",
        description="api: taints and cordons through the API server; docker: kind node "
        "containers are killed/paused with the docker CLI (faithful crash and freeze)",
    )
    drain: KubernetesDrainSettings = Field(default_factory=KubernetesDrainSettings)
    wait_timeout: Duration = Field(
        default=120.0, description="longest wait for a rollout, switchover or rejoin"
    )
    poll_interval: Duration = 0.5
    dr_context: str | None = Field(
        default=None, description="kubeconfig context of the DR cluster (region dr)"
    )
    erp_login_secret: str | None = Field(
        default="ledgerdrill-erp-login",
        description="Secret in the namespace with the ERP login for probes and load "
        "(keys login, password, optional database); null: none",
    )
