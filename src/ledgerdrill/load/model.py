"""What a load run measured, as pydantic models the report embeds as they are.

Times: ``t_s`` counts whole seconds from the start of the Locust test (``started_at``, UTC
wall time, also ``started_epoch_s``), so a timeline on UTC wall time can join them. Second
``t_s`` covers requests that *completed* in ``[started_epoch_s' + t_s, ... + 1)`` where
``started_epoch_s'`` is ``started_epoch_s`` rounded down to a whole second (Locust buckets
by ``int(time.time())``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["baseline", "fault", "recovery", "post-recovery"]
PHASES: tuple[Phase, ...] = ("baseline", "fault", "recovery", "post-recovery")
CountsSource = Literal["locust-json", "listener", "csv-history", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecondStats(_Model):
    t_s: int = Field(ge=0, description="whole seconds since the start of the test")
    at: dt.datetime = Field(description="UTC wall time of the start of this second")
    requests: int = Field(ge=0, description="requests completed in this second (incl. failures)")
    failures: int = Field(ge=0)
    p50_ms: float | None = None
    p95_ms: float | None = None
    latency_hist_ms: dict[int, int] = Field(
        default_factory=dict,
        description="response time (ms, Locust's rounding) -> count; empty when unknown",
    )


class LoadError(_Model):
    name: str
    error: str
    occurrences: int = Field(ge=0)


class LoadResult(_Model):
    profile: str
    started_at: dt.datetime | None = Field(description="UTC; None when Locust never started")
    started_epoch_s: float | None = None
    duration_s: float = Field(ge=0, description="seconds covered by the series")
    startup_s: float | None = Field(
        default=None, description="from launching the subprocess to Locust's test start"
    )
    seconds: list[SecondStats] = Field(default_factory=list)
    requests: int = Field(ge=0, description="sum of the per-second requests")
    failures: int = Field(ge=0)
    locust_requests: int | None = Field(default=None, description="Locust's own JSON total")
    locust_failures: int | None = None
    counts_source: CountsSource = "none"
    errors: list[LoadError] = Field(default_factory=list)
    exit_code: int | None = None
    ended_by: Literal["profile-end", "stop", "time-limit", "killed", "crashed", "not-started"]
    cpu_s: float | None = Field(default=None, description="CPU seconds used by Locust")
    log_tail: str = ""


class PhaseStats(_Model):
    phase: Phase
    start_s: float
    end_s: float
    seconds: int = Field(ge=0, description="number of one-second buckets in the phase")
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1, description="None: no requests")
    throughput_rps: float | None = Field(default=None, ge=0, description="None: no seconds")
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class LoadSummary(_Model):
    """Load degradation per phase: what users experienced before, during and after."""

    phases_source: Literal["requests", "seconds"] = Field(
        default="seconds",
        description="requests: each request in the phase its answer fell in (the per-request "
        "record); seconds: one-second buckets by their midpoint (no record)",
    )

    profile: str
    t_inject_s: float | None
    t_recovered_s: float | None
    t_post_recovery_s: float | None
    phases: list[PhaseStats]
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    locust_requests: int | None = None
    baseline_p95_ms: float | None = None
    p95_limit_ms: float | None = Field(
        default=None, description="max(baseline p95 x (1 + tolerance), baseline + tolerance_ms)"
    )
    p95_back_after_s: float | None = Field(
        default=None,
        description="seconds from recovery until p95 stays within the limit; None: not seen",
    )
    p95_back_reason: str = ""

    def phase(self, name: Phase) -> PhaseStats:
        return next(p for p in self.phases if p.phase == name)
