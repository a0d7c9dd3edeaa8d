"""The Azure backend's settings in a target file (``platform.kind: azure``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ledgerdrill.durations import Duration
from ledgerdrill.platforms.kubernetes.settings import KubernetesPlatformSettings
from ledgerdrill.settings_model import Strict


class AzureDatabaseSettings(Strict):
    """The PostgreSQL Flexible Server the ERP uses, its DR replica and restore naming."""

    resource_group: str = Field(description="resource group of the primary server")
    server: str = Field(description="name of the primary Flexible Server")
    dr_replica: str | None = Field(default=None, description="read replica in the dr region")
    dr_replica_resource_group: str | None = Field(
        default=None, description="its resource group (default: resource_group)"
    )
    restore_server_template: str = Field(
        default="{server}-pitr-{stamp}",
        description="name of a point-in-time restore's new server; {server} and {stamp} "
        "(UTC, %Y%m%d%H%M%S) are filled in",
    )
    failover_mode: Literal["ForcedFailover", "ForcedSwitchover"] = Field(
        default="ForcedFailover", description="restart mode used for a database crash"
    )
    switchover_mode: Literal["PlannedFailover", "PlannedSwitchover"] = "PlannedFailover"
    promote_mode: Literal["Switchover", "Standalone"] = Field(
        default="Switchover", description="DR replica promotion: Switchover can fail back"
    )
    promote_option: Literal["Planned", "Forced"] = "Planned"
    virtual_endpoint: str | None = Field(
        default=None,
        description="virtual endpoint pair on the primary server the ERP connects through "
        "(its writer endpoint follows a Switchover promotion, so the ERP keeps its host)",
    )
    geo_restore_server_template: str = Field(
        default="{server}-geo-{stamp}",
        description="name of a geo-restore's new server in the paired (dr) region",
    )
    geo_restore_resource_group: str | None = Field(
        default=None,
        description="resource group of a geo-restored server (default: the replica's, "
        "else resource_group)",
    )
    geo_restore_subnet_id: str | None = Field(
        default=None,
        description="a private-access server's geo-restore: resource id of a subnet "
        "delegated to Microsoft.DBforPostgreSQL/flexibleServers in the paired region",
    )
    geo_restore_private_dns_zone_id: str | None = Field(
        default=None,
        description="a private-access server's geo-restore: resource id of the private "
        "DNS zone the restored server registers in",
    )

    @model_validator(mode="after")
    def _writer_can_follow(self) -> AzureDatabaseSettings:
        if self.virtual_endpoint and self.promote_mode == "Standalone":
            raise ValueError(
                "database.virtual_endpoint: the writer endpoint follows only a Switchover "
                "promotion (a Standalone promotion leaves the replica outside the endpoint); "
                "use promote_mode: Switchover"
            )
        return self


class AzureClusterSettings(Strict):
    """An AKS cluster: its node resource group (MC_...) and node-pool scale sets."""

    name: str = Field(description="the AKS cluster's name (for people and the plan)")
    region: str = Field(description="Azure region, e.g. westeurope")
    node_resource_group: str = Field(description="the MC_... resource group of the scale sets")
    scale_sets: list[str] = Field(default_factory=list, description="node-pool VMSS names")


class AzurePlatformSettings(Strict):
    """An AKS + PostgreSQL Flexible Server estate acted on through Azure Resource Manager.

    Credentials are never in the file: ``DefaultAzureCredential`` finds them (workload
    identity, managed identity, environment, Azure CLI login)."""

    kind: Literal["azure"] = "azure"
    subscription_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$")
    allowed_resource_groups: list[str] = Field(
        min_length=1, description="every resource touched must be in one of these"
    )
    cluster: AzureClusterSettings
    dr_cluster: AzureClusterSettings | None = None
    database: AzureDatabaseSettings | None = None
    state_dir: str = ".ledgerdrill/azure"
    arm_endpoint: str | None = Field(
        default=None, description="Resource Manager URL (default: the public cloud's)"
    )
    ca_bundle: str | None = Field(default=None, description="CA file to verify ARM with")
    polling_interval: Duration = 5.0
    operation_timeout: Duration = 900.0
    node_ready_timeout: Duration = 600.0
    failover_timeout: Duration = 600.0
    restore_timeout: Duration = 3600.0
    kubernetes: KubernetesPlatformSettings | None = Field(
        default=None,
        description="the AKS cluster's kubeconfig context: node readiness and listing, "
        "certificates, cache and releases come from the Kubernetes backend through it",
    )

    @model_validator(mode="after")
    def _groups_allowed(self) -> AzurePlatformSettings:
        allowed = {g.lower() for g in self.allowed_resource_groups}
        used = [("cluster.node_resource_group", self.cluster.node_resource_group)]
        if self.dr_cluster is not None:
            used.append(("dr_cluster.node_resource_group", self.dr_cluster.node_resource_group))
        if self.database is not None:
            used.append(("database.resource_group", self.database.resource_group))
            for optional in ("dr_replica_resource_group", "geo_restore_resource_group"):
                if group := getattr(self.database, optional):
                    used.append((f"database.{optional}", group))
        for field_name, group in used:
            # ARM resource group names are case-insensitive (AKS lower-cases them)
            if group.lower() not in allowed:
                raise ValueError(
                    f"{field_name}: resource group {group!r} is not in allowed_resource_groups"
                )
        return self
