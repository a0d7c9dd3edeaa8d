"""Target files: which platform a drill acts on, its tiers and objectives, and its safety.

A target file is YAML, validated with pydantic; every mistake becomes one
``ConfigError`` line naming the file, the field, the bad value and what is allowed.
Credentials never live here: fields ending in ``_env`` name environment variables.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledgerdrill.config_errors import load_yaml_mapping, validate
from ledgerdrill.durations import Duration
from ledgerdrill.measure.verdict import Objective
from ledgerdrill.odoo_api import ErpApi

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
NAME_RULE = "lower-case letters, digits, '.', '_' or '-', at most 63 characters"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tier(Strict):
    """A finance tier's objectives."""

    rto: Duration = Field(description="longest acceptable recovery time")
    rpo: Duration = Field(description="longest acceptable data-loss window")
    max_error_rate_during_fault: float | None = Field(default=None, ge=0, le=1)
    p95_back_to_baseline_within: Duration | None = None
    rto_measured_by: Literal["probes", "users", "both"] = Field(
        default="both",
        description="whose recovery the RTO judges: the probes', the users' (their RTO "
        "and their longest stall, from the load's per-request record), or both",
    )
    description: str = ""

    def objective(self) -> Objective:
        return Objective(
            rto_s=self.rto,
            rpo_s=self.rpo,
            max_error_rate_during_fault=self.max_error_rate_during_fault,
            p95_back_to_baseline_within_s=self.p95_back_to_baseline_within,
            rto_measured_by=self.rto_measured_by,
        )


class ScenarioSettings(Strict):
    """Per-scenario settings: its tier, how long to wait and watch, and fault parameters."""

    tier: str | None = None
    enabled: bool = True
    recovery_timeout: Duration = 120.0
    observe_after_recovery: Duration = 3.0
    load_profile: str | None = Field(
        default=None,
        description="load profile for this scenario (wins over its marker); none: no load",
    )
    load_workers: int = Field(
        default=0, ge=0, le=64, description="Locust worker processes (0: one process)"
    )
    params: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)


class StabilitySettings(Strict):
    samples: int = Field(default=5, ge=1, le=10_000)
    duration: Duration = 2.0


class ProbeSettings(Strict):
    catalogue: str | None = Field(default=None, description="path of a probe catalogue YAML")
    interval: Duration = 0.2
    steady_state: Duration = Field(default=2.0, description="healthy window before injection")
    settle_timeout: Duration = Field(
        default=30.0,
        description="how long the steady-state gate waits for a healthy window (a platform "
        "still settling after an earlier scenario) before the scenario is INCONCLUSIVE",
    )
    detection_timeout: Duration = Field(
        default=30.0,
        description="how long a scenario whose runbook answers a detected incident waits "
        "for a probe to see the fault; then the runbook runs anyway and the timeline says "
        "fault.not-detected",
    )

    @field_validator("interval")
    @classmethod
    def _interval_range(cls, value: float) -> float:
        if not 0.05 <= value <= 60:
            raise ValueError("probe interval must be between 50ms and 60s")
        return value


class AllowList(Strict):
    """Glob patterns of what faults may act on. Empty means nothing of that kind."""

    nodes: list[str] = Field(default_factory=list)
    zones: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    databases: list[str] = Field(default_factory=list)
    certificates: list[str] = Field(default_factory=list)
    caches: list[str] = Field(default_factory=list)
    releases: list[str] = Field(default_factory=list)


class BlastRadius(Strict):
    max_nodes: int = Field(default=1, ge=0, le=10_000)
    max_zones: int = Field(default=1, ge=0, le=100)
    max_regions: int = Field(default=0, ge=0, le=100)
    max_node_share: float = Field(default=0.5, ge=0, le=1)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKEND: list[Weekday] = ["sat", "sun"]


class MonthEndClose(Strict):
    """The last N business days of every month and the first M of the next."""

    last_business_days: int = Field(default=0, ge=0, le=15)
    first_business_days: int = Field(default=0, ge=0, le=15)

    @model_validator(mode="after")
    def _some_days(self) -> MonthEndClose:
        if self.last_business_days + self.first_business_days == 0:
            raise ValueError("give last_business_days and/or first_business_days (1 to 15)")
        return self


class BlackoutWindow(Strict):
    """When no drill may disrupt the platform: a month-end close, or explicit dates
    (``from``/``to``, both inclusive, whole days in the calendar's time zone)."""

    name: str
    reason: str = ""
    month_end: MonthEndClose | None = None
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r} is not a valid window name ({NAME_RULE})")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> BlackoutWindow:
        dated = self.start is not None or self.end is not None
        if (self.month_end is not None) == dated:
            raise ValueError(f"window {self.name}: give exactly one of month_end or from/to dates")
        if dated:
            if self.start is None or self.end is None:
                raise ValueError(f"window {self.name}: give both from and to (inclusive dates)")
            if self.end < self.start:
                raise ValueError(f"window {self.name}: to {self.end} is before from {self.start}")
            if (self.end - self.start).days > 366:
                raise ValueError(f"window {self.name}: at most 366 days from from to to")
        return self


class BusinessCalendar(Strict):
    """Business days (not weekend, not a holiday) and blackout windows, in one time zone."""

    timezone: str = Field(description="IANA time zone of the business, e.g. Europe/Berlin")
    weekend: list[Weekday] = Field(default_factory=_WEEKEND.copy, max_length=6)
    holidays: list[date] = Field(default_factory=list, max_length=1000)
    blackouts: list[BlackoutWindow] = Field(default_factory=list, max_length=100)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception:  # unknown key, a path, a NUL byte: all the same mistake
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as Europe/Berlin, "
                "America/New_York or UTC)"
            ) from None
        return value

    @model_validator(mode="after")
    def _sane(self) -> BusinessCalendar:
        if len(set(self.weekend)) == len(WEEKDAYS):
            raise ValueError("weekend: at least one day of the week must be a business day")
        names = [w.name for w in self.blackouts]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"blackouts: window names must be unique, repeated: {repeated}")
        return self


class RunbookApproval(Strict):
    """Who approves a runbook step when no ``pytest_ledgerdrill_approve_runbook_step``
    hook answers and the run is not ``--interactive``."""

    by: Literal["delay", "environment", "file", "terminal"] = Field(
        default="delay",
        description="delay: approved after runbook_approval_delay (a rehearsal); "
        "environment: LEDGERDRILL_RUNBOOK_APPROVE / LEDGERDRILL_RUNBOOK_REJECT list step "
        "kinds (or all); file: a YAML file with approve: and reject: lists, read until the "
        "step is named in it or timeout; terminal: ask on the controlling terminal",
    )
    file: str | None = Field(
        default=None, description="by: file -- the approvals file (relative to the target file)"
    )
    timeout: Duration = Field(
        default=1800.0, description="a step nobody approves within this is declined"
    )

    @model_validator(mode="after")
    def _file_given(self) -> RunbookApproval:
        if self.by == "file" and not self.file:
            raise ValueError("by: file needs file: the path of the approvals file")
        return self


class SafetySettings(Strict):
    allow: AllowList = Field(default_factory=AllowList)
    blast_radius: BlastRadius = Field(default_factory=BlastRadius)
    calendar: BusinessCalendar | None = Field(
        default=None, description="blackout windows (month-end close) when drills are refused"
    )
    fault_call_timeout: Duration = Field(
        default=3600.0,
        description="longest one inject or revert may take before the run gives up on it "
        "(backends bound their own calls, a point-in-time restore included; this is the "
        "backstop for a call that hangs)",
    )
    runbook_approval_delay: Duration = Field(
        default=1.0,
        description="with runbook_approval.by: delay, a runbook step is approved after this "
        "delay (a rehearsal of the decision time, recorded as such)",
    )
    runbook_approval: RunbookApproval = Field(default_factory=RunbookApproval)
    baseline_timeout: Duration = Field(
        default=120.0,
        description="after a scenario's revert (and after cleanup), how long the platform "
        "may take to read back as it was before the drill (a standby rebuilt, a replica "
        "rejoined) before it is reported NOT restored",
    )


class SandboxPlatformSettings(Strict):
    kind: Literal["sandbox"] = "sandbox"
    state_dir: str = ".ledgerdrill/sandbox"
    erp_replicas_per_node: int = Field(default=1, ge=1, le=4)
    eviction_timeout: Duration = 5.0
    ha_detection_window: Duration = 2.0
    entry_point: Literal["hardened", "naive"] = Field(
        default="hardened",
        description="hardened: forwarding timeouts, passive health checks, retries of "
        "idempotent requests only; naive: none of these (to see the difference they make)",
    )


class FakePlatformSettings(Strict):
    """An in-memory platform whose state lives in a JSON file: for the harness's own tests."""

    kind: Literal["fake"] = "fake"
    state_file: str = ".ledgerdrill/fake-platform.json"
    nodes: dict[str, str] = Field(
        default_factory=lambda: {"node-a": "a", "node-b": "b", "node-c": "c"},
        description="node name -> zone",
    )
    heal_after: Duration | None = Field(
        default=None, description="the fake's self-healing: a crashed node comes back after this"
    )
    capabilities: list[str] | None = Field(
        default=None, description="offer only these capability protocols (default: all)"
    )
    entry_url: str | None = Field(
        default=None,
        description="an ERP to run load against (a test's JSON-RPC server on 127.0.0.1)",
    )


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


PlatformSettings = Annotated[
    SandboxPlatformSettings
    | FakePlatformSettings
    | AzurePlatformSettings
    | KubernetesPlatformSettings,
    Field(discriminator="kind"),
]

Environment = Literal["sandbox", "development", "staging", "production"]


class Target(Strict):
    name: str
    description: str = ""
    environment: Environment = "sandbox"
    platform: PlatformSettings
    tiers: dict[str, Tier]
    default_tier: str | None = None
    scenarios: dict[str, ScenarioSettings] = Field(default_factory=dict)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    erp_api: ErpApi = Field(
        default="jsonrpc",
        description="the ERP API probes, the canary and the load speak: jsonrpc (Odoo 17/18: "
        "a session, /web/dataset/call_kw) or json2 (Odoo 19: an API key, /json/2)",
    )
    stability: StabilitySettings = Field(default_factory=StabilitySettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)

    # where the file was read from: relative paths in it are relative to its folder
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r} is not a valid name ({NAME_RULE})")
        return value

    @field_validator("tiers")
    @classmethod
    def _tiers_named(cls, tiers: dict[str, Tier]) -> dict[str, Tier]:
        if not tiers:
            raise ValueError("define at least one tier, e.g. finance-core: {rto: 5m, rpo: 0s}")
        for name in tiers:
            if not NAME.match(name):
                raise ValueError(f"tier name {name!r} is not valid ({NAME_RULE})")
        return tiers

    @model_validator(mode="after")
    def _tiers_exist(self) -> Target:
        known = ", ".join(self.tiers)
        if self.default_tier is not None and self.default_tier not in self.tiers:
            raise ValueError(
                f"default_tier: unknown tier {self.default_tier!r} (defined tiers: {known})"
            )
        for scenario, settings in self.scenarios.items():
            if settings.tier is not None and settings.tier not in self.tiers:
                raise ValueError(
                    f"scenarios.{scenario}.tier: unknown tier {settings.tier!r} "
                    f"(defined tiers: {known})"
                )
        return self

    @model_validator(mode="after")
    def _azure_zones_region_scoped(self) -> Target:
        """Azure zone numbers are per region: a bare "2" would name a zone in every
        region of the target, so zones are written ``<region>-<number>`` there."""
        if not isinstance(self.platform, AzurePlatformSettings):
            return self
        region = self.platform.cluster.region
        named = [(f"safety.allow.zones: {z!r}", z) for z in self.safety.allow.zones]
        named += [
            (f"scenarios.{sid}.params.zone: {s.params['zone']!r}", str(s.params["zone"]))
            for sid, s in self.scenarios.items()
            if "zone" in s.params
        ]
        for where, zone in named:
            if zone.strip().isdigit():
                raise ValueError(
                    f"{where} is a bare Azure zone number, ambiguous across regions; "
                    f"write <region>-<number>, e.g. {region}-{zone.strip()}"
                )
        return self

    # -- resolution ----------------------------------------------------------------
    def scenario(self, scenario_id: str) -> ScenarioSettings:
        return self.scenarios.get(scenario_id, ScenarioSettings())

    def tier_for(self, scenario_id: str, marker_tier: str | None = None) -> str | None:
        """The target file's mapping wins over the scenario's own ``tier`` marker."""
        return self.scenario(scenario_id).tier or marker_tier or self.default_tier

    def resolve_path(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        if path.is_absolute() or self.source is None:
            return path
        return (self.source.parent / path).resolve()


def load_target(path: str | Path) -> Target:
    """Read and validate a target file; ``ConfigError`` with a clear message otherwise."""
    file = Path(path)
    data: dict[str, Any] = load_yaml_mapping(file, "target file")
    target: Target = validate(Target, data, file)
    return target.model_copy(update={"source": file.resolve()})
