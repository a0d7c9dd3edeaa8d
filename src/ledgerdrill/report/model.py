"""``report.json``: the machine-readable record of a run (schema versioned).

Markdown, HTML and JUnit properties are all rendered from this model, never
from live objects, so what people read is exactly what was stored.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ledgerdrill.load.model import LoadSummary

SCHEMA_VERSION = 1


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectiveModel(Model):
    rto_s: float | None
    rpo_s: float | None


class UsersModel(Model):
    """What users lived through, from the load's per-request record (see
    ``ledgerdrill.measure.users`` for the definitions). ``None`` means not measurable;
    ``absent`` says why."""

    requests: int = Field(description="requests waiting at some moment after the fault")
    recovered: bool | None = None
    rto_s: float | None = None
    rto_error_s: float | None = None
    longest_stall_s: float | None = Field(
        default=None, description="longest span with users waiting and no request succeeding"
    )
    longest_wait_s: float | None = Field(
        default=None, description="longest any one request waited after the fault"
    )
    error_rate_during_fault: float | None = None
    p95_back_to_baseline_s: float | None = None
    requests_lost: int = Field(description="sent and never answered")
    baseline_p95_ms: float | None = None
    p95_during_fault_ms: float | None = Field(
        default=None,
        description="95th percentile of the response times of the requests served in the "
        "fault window",
    )
    reason: str = ""
    absent: dict[str, str] = Field(default_factory=dict)
    stalls: list[tuple[float, float]] = Field(
        default_factory=list,
        description="stalls of at least 1 s, as (from, to) seconds since the fault",
    )


class Figures(Model):
    """Measured figures; ``None`` means not measured (never a stand-in value)."""

    rto_s: float | None = None
    rto_error_s: float | None = None
    recovered: bool | None = None
    time_to_detect_s: float | None = None
    time_to_detect_error_s: float | None = Field(
        default=None,
        description="the fault became visible between the last healthy answer and the "
        "first failed send: this long a span before time_to_detect_s",
    )
    downtime_s: float | None = None
    availability: float | None = None
    rpo_s: float | None = None
    rpo_censored: bool | None = Field(
        default=None,
        description="true: the canary's first write was lost too, so rpo_s is a lower bound",
    )
    rpo_source: str | None = Field(
        default=None,
        description="which witness rpo_s is: 'canary' (its own writes, read back) or "
        "'database' (the commits a promotion lost, read from the old primary's WAL)",
    )
    rpo_canary_s: float | None = Field(default=None, description="the canary's RPO alone")
    canary_history_s: float | None = Field(
        default=None,
        description="how far before the fault the canary's judged writes reach (it writes "
        "for the whole run; each scenario judges those since the previous read-back): a "
        "loss older than this the canary cannot see",
    )
    rpo_database_s: float | None = Field(
        default=None,
        description="the database's RPO alone; None: no promotion in the scenario, or a "
        "backend that cannot read it (rpo_database_detail says which)",
    )
    rpo_database_detail: str | None = None
    lost_commits: int | None = Field(
        default=None,
        description="acknowledged commits the promotions lost, by the database's account",
    )
    rpo_vs_restore_point_s: float | None = None
    writes_attempted: int | None = None
    lost_writes: int | None = None
    recovered_writes: int | None = None
    unexpected_writes: int | None = None
    duplicate_writes: int | None = None
    users: UsersModel | None = Field(
        default=None, description="users' figures; None: no load ran during the scenario"
    )
    decision_time_s: float | None = Field(
        default=None,
        description="runbook steps: seconds spent waiting for people's approval (part of "
        "the RTO, but not the platform's: a report can tell the two apart)",
    )
    runbook_time_s: float | None = Field(
        default=None, description="runbook steps: seconds the steps themselves took to run"
    )


class ProbeRecovery(Model):
    probe: str
    recovered: bool
    impact_seen: bool
    rto_s: float | None
    rto_error_s: float | None = None
    time_to_detect_s: float | None
    time_to_detect_error_s: float | None = None
    downtime_s: float
    availability: float | None
    samples: int
    reason: str


class EventModel(Model):
    kind: str
    name: str
    at: datetime
    t_s: float = Field(description="seconds since the scenario's timeline origin")
    attributes: dict[str, object] = Field(default_factory=dict)


class PlannedAction(Model):
    """A fault or runbook step: planned (dry run) or performed (a real run's ``actions``);
    the two lists are built the same way so that they can be compared."""

    fault: str
    description: str
    targets: list[str]
    refused: list[str] = Field(default_factory=list)
    overrides: list[str] = Field(
        default_factory=list, description="blackout windows in effect, overridden by name"
    )
    chosen_when_run: str = Field(
        default="",
        description="the role the targets are chosen by when the fault runs "
        "(the names shown are the role's holders when the plan was made)",
    )
    changes: list[str] = Field(
        default_factory=list, description="a runbook step: what it would change, one line each"
    )
    approval: str = Field(default="", description="a runbook step: who approves it")
    after_interrupt: str = Field(
        default="",
        description="a runbook step: what `ledgerdrill cleanup` does with it when a killed "
        "run left it unfinished",
    )


class LoadSecond(Model):
    """One second of load: requests completed in it, failures, latency percentiles."""

    t_s: float = Field(description="seconds since the scenario's timeline origin")
    requests: int
    failures: int
    p50_ms: float | None = None
    p95_ms: float | None = None


class ScenarioLoad(Model):
    """The load that ran during a scenario: per-phase statistics and the per-second series."""

    profile: str
    summary: LoadSummary
    seconds: list[LoadSecond] = Field(default_factory=list)
    locust_requests: int | None = None
    locust_failures: int | None = None
    ended_by: str = ""
    cpu_s: float | None = None
    errors: list[dict[str, object]] = Field(default_factory=list)


class ScenarioReport(Model):
    id: str
    nodeid: str
    fault: str | None
    tier: str | None
    objective: ObjectiveModel | None
    measured: Figures
    verdict: str
    reasons: list[str]
    checks: list[dict[str, object]] = Field(default_factory=list)
    probes: list[ProbeRecovery] = Field(default_factory=list)
    events: list[EventModel] = Field(default_factory=list)
    planned: list[PlannedAction] = Field(default_factory=list)
    actions: list[PlannedAction] = Field(
        default_factory=list,
        description="what a real run did, in order (journaled faults, "
        "runbook steps): the dry run's plan of the same scenario lists the same",
    )
    timeline_file: str | None = None
    load: ScenarioLoad | None = None
    lost_refs: list[str] = Field(
        default_factory=list, description="acknowledged writes missing after recovery (first 500)"
    )
    duplicate_refs: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    duration_s: float | None = None
    error: str | None = None


class RunReport(Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    harness_version: str
    target: str
    environment: str
    platform: str
    # the ERP API the probes, the canary and the load spoke (the target's erp_api)
    erp_api: str = "jsonrpc"
    dry_run: bool
    inventory: dict[str, object] = Field(default_factory=dict)
    started_at: datetime
    finished_at: datetime | None = None
    scenarios: list[ScenarioReport] = Field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(path)

    @staticmethod
    def read(path: Path) -> RunReport:
        return RunReport.model_validate_json(path.read_text(encoding="utf-8"))
