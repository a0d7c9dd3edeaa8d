"""Building the SDK clients, the node source and the composed Kubernetes backend from a
target's settings.

Credentials come only from ``DefaultAzureCredential`` (workload identity, managed
identity, environment, Azure CLI) -- never from the target file.

Test-only: ``LEDGERDRILL_TEST_FAKE_ARM`` names a JSON file ``{"base_url", "ca_file"}``
written by the fake ARM a test started. When it is set, the clients talk to that
endpoint with a dummy credential (no real token is ever requested or sent). It is
refused unless the endpoint is ``https`` on a loopback address, and verification stays
on with the fake's own CA: it cannot point a run at anything but a local fake, and
the plan says it is in use.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledgerdrill.errors import ConfigError
from ledgerdrill.platforms.azure.nodes import KubernetesNodeSource, NodeSource
from ledgerdrill.platforms.azure.platform import AzurePlatform
from ledgerdrill.platforms.base import Platform
from ledgerdrill.targets import AzurePlatformSettings, Target

FAKE_ARM_ENV = "LEDGERDRILL_TEST_FAKE_ARM"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
REQUEST_CONNECT_TIMEOUT_S = 20
REQUEST_READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class FakeArmEndpoint:
    base_url: str
    ca_file: str


def fake_arm_from_env() -> FakeArmEndpoint | None:
    """The test-only endpoint, or ``None`` (the normal case: real ARM)."""
    pointer = os.environ.get(FAKE_ARM_ENV)
    if not pointer:
        return None
    try:
        data = json.loads(Path(pointer).read_text(encoding="utf-8"))
        endpoint = FakeArmEndpoint(str(data["base_url"]), str(data["ca_file"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{FAKE_ARM_ENV}={pointer}: not a fake ARM endpoint file ({exc})"
        ) from exc
    parts = urlsplit(endpoint.base_url)
    if parts.scheme != "https" or parts.hostname not in LOOPBACK:
        raise ConfigError(
            f"{FAKE_ARM_ENV}: {endpoint.base_url} is not https on a loopback address; "
            "the test-only endpoint is for a local fake ARM only"
        )
    return endpoint


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
    fake = fake_arm_from_env()
    if fake is not None:
        from ledgerdrill.platforms.azure.fake_arm import FakeCredential

        settings = settings.model_copy(
            update={"arm_endpoint": fake.base_url, "ca_bundle": fake.ca_file}
        )
        credential = FakeCredential()
        note = f"TEST FAKE at {fake.base_url} ({FAKE_ARM_ENV})"
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
