"""Building the SDK clients from a target's settings.

Credentials come only from ``DefaultAzureCredential`` (workload identity, managed
identity, environment, Azure CLI) -- never from the target file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledgerdrill.platforms.azure.nodes import KubernetesNodeSource, NodeSource
from ledgerdrill.platforms.azure.platform import AzurePlatform
from ledgerdrill.targets import AzurePlatformSettings, Target


def client_options(settings: AzurePlatformSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"polling_interval": settings.polling_interval}
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


def azure_platform_from_target(
    target: Target,
    settings: AzurePlatformSettings,
    *,
    node_source: NodeSource | None = None,
    credential: Any | None = None,
) -> AzurePlatform:
    compute, postgres = build_clients(settings, credential)
    return AzurePlatform(
        target.name,
        settings,
        compute_client=compute,
        postgres_client=postgres,
        node_source=node_source or KubernetesNodeSource(),
        state_dir=Path(target.resolve_path(settings.state_dir)),
    )
