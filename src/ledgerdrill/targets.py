"""Target files: which platform a drill acts on, its tiers and objectives, and its safety.

A target file is YAML, validated with pydantic; every mistake becomes one
``ConfigError`` line naming the file, the field, the bad value and what is allowed.
Credentials never live here: fields ending in ``_env`` name environment variables.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from ledgerdrill.config_errors import load_yaml_mapping, validate
from ledgerdrill.durations import Duration
from ledgerdrill.measure.verdict import Objective
from ledgerdrill.odoo_api import ErpApi
from ledgerdrill.platforms.registry import (
    AzureClusterSettings,
    AzureDatabaseSettings,
    AzurePlatformSettings,
    FakePlatformSettings,
    KubernetesDrainSettings,
    KubernetesPlatformSettings,
    PlatformSettings,
    SandboxPlatformSettings,
)
from ledgerdrill.settings_model import Strict
from ledgerdrill.target_kinds import ALLOWLIST_FIELD

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
NAME_RULE = "lower-case letters, digits, '.', '_' or '-', at most 63 characters"
# each backend owns its settings model (platforms/<backend>/settings.py); a target names
# one of them by ``platform.kind`` (the registry knows them all: platforms/registry.py)
__all__ = [
    "AzureClusterSettings",
    "AzureDatabaseSettings",
    "AzurePlatformSettings",
    "FakePlatformSettings",
    "KubernetesDrainSettings",
    "KubernetesPlatformSettings",
    "PlatformSettings",
    "SandboxPlatformSettings",
    "Strict",
]


class Tier(Strict):
    """A finance tier's objectives."""

    rto: Duration = Field(description="longest acceptable recovery time")
    rpo: Duration = Field(description="longest acceptable data-loss window")
    max_error_rate_during_fault: float | None = Field(default=None, ge=0, le=1)
    p95_during_fault: Duration | None = Field(
        default=None,
        description="the longest acceptable 95th-percentile response time of the requests "
        "served during the fault (a degradation that keeps serving is judged by it)",
    )
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
            p95_during_fault_s=self.p95_during_fault,
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
    links: list[str] = Field(default_factory=list)  # network links, "<from>><to>"


# one declaration of target kinds (target_kinds.py): the allowlist has a field for each
if set(AllowList.model_fields) != set(ALLOWLIST_FIELD.values()):
    raise RuntimeError(  # a programming error, caught by any test that loads this module
        f"AllowList fields {sorted(AllowList.model_fields)} differ from the target kinds'"
        f" {sorted(ALLOWLIST_FIELD.values())} (ledgerdrill/target_kinds.py)"
    )


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
