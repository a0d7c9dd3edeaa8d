"""Building the SDK clients, the node source and the composed Kubernetes backend from a
target's settings.

Credentials come only from ``DefaultAzureCredential`` (workload identity, managed
identity, environment, Azure CLI) -- never from the target file.

For the harness's own tests, ``use_arm`` puts a local ARM (the fake in
``ledgerdrill.testing``) and its dummy credential in place of the real ones, for every
Azure platform built afterwards in this process -- injected by the test, never switched
on by configuration or environment. It is refused unless the endpoint is ``https`` on a
loopback address, verification stays on with the fake's own CA, and the plan says it is
in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledgerdrill.errors import ConfigError
from ledgerdrill.platforms.azure.nodes import KubernetesNodeSource, NodeSource
from ledgerdrill.platforms.azure.platform import AzurePlatform
from ledgerdrill.platforms.base import Platform
from ledgerdrill.targets import AzurePlatformSettings, Target

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
REQUEST_CONNECT_TIMEOUT_S = 20
REQUEST_READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class ArmOverride:
    """A local ARM endpoint, its CA and the credential to call it with (tests only)."""

    base_url: str
    ca_file: str
    credential: Any

    @property
    def note(self) -> str:
        return f"TEST FAKE at {self.base_url} (injected by a test)"


class _Injected:
    """What a test put in place of the real ARM (``use_arm``); normally nothing."""

    arm: ArmOverride | None = None


def use_arm(override: ArmOverride | None) -> None:
    """Tests only: every Azure platform built from now on talks to ``override`` (None: the
    real ARM again). ``ConfigError`` unless it is https on a loopback address."""
    if override is not None:
        parts = urlsplit(override.base_url)
        if parts.scheme != "https" or parts.hostname not in LOOPBACK:
            raise ConfigError(
                f"{override.base_url} is not https on a loopback address; "
                "an injected ARM endpoint is for a local fake only"
            )
    _Injected.arm = override


def client_options(settings: AzurePlatformSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "polling_interval": settings.polling_interval,
        # one HTTP request to ARM: azure-core's own default is 300 s each way; an answer
        # that slow means ARM is in trouble, and the drill should say so sooner
        "connection_timeout": REQUEST_CONNECT_TIMEOUT_S,
        "read_timeout": REQUEST_READ_TIMEOUT_S,
    }
    if settings.arm_endpoint:
        options["base_url"] = settings.arm_endpoint
    if settings.ca_bundle:
        options["connection_verify"] = settings.ca_bundle  # verification stays on
    return options


def build_clients(
    settings: AzurePlatformSettings, credential: Any | None = None
) -> tuple[Any, Any | None]:
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    options = client_options(settings)
    compute = ComputeManagementClient(credential, settings.subscription_id, **options)
    postgres = None
    if settings.database is not None:
        postgres = PostgreSQLManagementClient(credential, settings.subscription_id, **options)
    return compute, postgres


def kubernetes_for(target: Target, settings: AzurePlatformSettings) -> tuple[Platform, NodeSource]:
    """The Kubernetes backend of the AKS cluster's context, and a node source reading the
    cluster's (and the dr context's) nodes through the same client."""
    from ledgerdrill.platforms.kubernetes import KubernetesPlatform
    from ledgerdrill.platforms.kubernetes.api import Kube, check_allowed

    kube_settings = settings.kubernetes
    assert kube_settings is not None
    backend = KubernetesPlatform.from_settings(target, kube_settings)  # checks the context
    owned: list[Any] = []
    dr_kube = getattr(backend, "dr_kube", None)  # the backend's own dr connection, if it has one
    if dr_kube is not None:
        return backend, KubernetesNodeSource.of(backend.kube.core, dr_kube.core)
    if kube_settings.dr_context:
        check_allowed(kube_settings.dr_context, kube_settings.allowed_contexts)
        kubeconfig = (
            str(target.resolve_path(kube_settings.kubeconfig)) if kube_settings.kubeconfig else None
        )
        owned.append(Kube.connect(kubeconfig, kube_settings.dr_context).core)
    return backend, KubernetesNodeSource.of(backend.kube.core, owned=owned)


def azure_platform_from_target(
    target: Target,
    settings: AzurePlatformSettings,
    *,
    node_source: NodeSource | None = None,
    credential: Any | None = None,
) -> AzurePlatform:
    note = None
    fake = _Injected.arm
    if fake is not None:
        settings = settings.model_copy(
            update={"arm_endpoint": fake.base_url, "ca_bundle": fake.ca_file}
        )
        credential = fake.credential
        note = fake.note
    kubernetes: Platform | None = None
    if settings.kubernetes is not None and node_source is None:
        kubernetes, node_source = kubernetes_for(target, settings)
    compute, postgres = build_clients(settings, credential)
    return AzurePlatform(
        target.name,
        settings,
        compute_client=compute,
        postgres_client=postgres,
        node_source=node_source or KubernetesNodeSource(),
        state_dir=Path(target.resolve_path(settings.state_dir)),
        kubernetes=kubernetes,
        endpoint_note=note,
    )
