"""Verdicts: measured figures against a tier's objective.

PASS only when every measurement exists and meets the target; FAIL when one
misses; INCONCLUSIVE when the steady-state gate failed or data is missing.
A known miss beats missing data: a scenario with one figure missing and another
over target is FAIL, because the miss alone already decides it.

RTO is compared as measured (the first healthy sample): the true recovery lies in
[rto_s - interval, rto_s], so ``rto_s <= target`` proves the target was met.

A tier's RTO applies to what users lived through too (``rto_measured_by``, default
``both``): the users' RTO, and their longest stall -- users waiting with nothing
getting through -- must each be within it. With ``both``, a scenario that ran no load
is judged by its probes alone; with ``users``, it is INCONCLUSIVE. The load criteria
(error rate during the fault, p95 back to baseline) are taken from the per-request
record when there is one, else from Locust's per-second counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from ledgerdrill.measure.invariants import InvariantReport
from ledgerdrill.measure.loss import Loss
from ledgerdrill.measure.recovery import Recovery, service_recovery
from ledgerdrill.measure.users import UsersFigures


class Verdict(StrEnum):
    """A scenario's outcome. ``judge`` gives the first three; the other two are not
    judgements of measured figures: PLANNED is a dry run's scenario whose every action
    the safety guard allows, REFUSED one the guard would not let run (a dry run's or a
    real run's) -- nothing was injected."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    PLANNED = "PLANNED"
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class Objective:
    """A tier's targets. ``None`` means "not an objective of this tier"."""

    rto_s: float | None
    rpo_s: float | None
    max_error_rate_during_fault: float | None = None
    p95_back_to_baseline_within_s: float | None = None
    rto_measured_by: RtoWitness = "both"
    p95_during_fault_s: float | None = None  # p95 response time of what was served


RtoWitness = Literal["probes", "users", "both"]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: no data to decide
    text: str


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        """The checks that decided the verdict, worst first."""
        failing = [c.text for c in self.checks if c.passed is False]
        missing = [c.text for c in self.checks if c.passed is None]
        passing = [c.text for c in self.checks if c.passed]
        if self.verdict in (Verdict.FAIL, Verdict.REFUSED):
            return failing
        if self.verdict is Verdict.INCONCLUSIVE:
            return missing
        return passing


@dataclass(frozen=True)
class LoadFigures:
    """What the load saw, for the load criteria of an objective."""

    error_rate_during_fault: float | None  # None: no request during the fault phase
    p95_back_after_s: float | None  # None: p95 never came back within tolerance
    p95_back_reason: str = ""
    p95_during_fault_ms: float | None = None  # None: not measured (p95_during_reason)
    p95_during_reason: str = "not measured from the load's per-second counts"


@dataclass(frozen=True)
class Measurements:
    """What one scenario measured; any part may be missing (None)."""

    steady_state_ok: bool
    steady_state_detail: str = ""
    recoveries: Sequence[Recovery] = ()
    loss: Loss | None = None
    invariants_after: InvariantReport | None = None
    extra_checks: Sequence[Check] = field(default_factory=tuple)
    load: LoadFigures | None = None
    users: UsersFigures | None = None  # what users lived through (the load's record)

    @property
    def rto(self) -> Recovery | None:
        """The service's recovery: the finest probes date it, the others confirm
        (``measure.recovery.service_recovery``)."""
        return service_recovery(self.recoveries)

    @property
    def detection(self) -> Recovery | None:
        """The probe that saw the fault first (its time to detect and that bar)."""
        seen = [r for r in self.recoveries if r.time_to_detect_s is not None]
        return min(seen, key=lambda r: r.time_to_detect_s or 0.0) if seen else None

    @property
    def time_to_detect_s(self) -> float | None:
        first = self.detection
        return first.time_to_detect_s if first is not None else None


def judge(objective: Objective, measured: Measurements) -> Judgement:
    if not measured.steady_state_ok:
        check = Check(
            "steady-state",
            None,
            f"steady-state gate failed before injection: {measured.steady_state_detail}",
        )
        return Judgement(Verdict.INCONCLUSIVE, (check,))
    checks: list[Check] = []
    if objective.rto_s is not None:
        if objective.rto_measured_by != "users":
            checks.append(_rto_check(objective.rto_s, measured))
        if objective.rto_measured_by != "probes":
            required = objective.rto_measured_by == "users"
            checks.extend(_users_rto_checks(objective.rto_s, measured.users, required=required))
    if objective.rpo_s is not None:
        checks.append(_rpo_check(objective.rpo_s, measured.loss))
    if measured.loss is not None:
        checks.extend(_anomaly_checks(measured.loss))
    checks.extend(_load_checks(objective, _load_figures(measured)))
    if measured.invariants_after is not None:
        problems = measured.invariants_after.problems()
        checks.append(
            Check(
                "invariants",
                not problems,
                "finance invariants hold after recovery"
                if not problems
                else "finance invariants broken: " + "; ".join(problems),
            )
        )
    checks.extend(measured.extra_checks)
    if any(c.passed is False for c in checks):
        verdict = Verdict.FAIL
    elif any(c.passed is None for c in checks) or not checks:
        verdict = Verdict.INCONCLUSIVE
        if not checks:
            checks.append(Check("objective", None, "no objective to judge against"))
    else:
        verdict = Verdict.PASS
    return Judgement(verdict, tuple(checks))


def _rto_check(target_s: float, measured: Measurements) -> Check:
    rto = measured.rto
    if rto is None or not rto.has_data:
        return Check("rto", None, "RTO not measured: no probe samples after injection")
    if not rto.recovered or rto.rto_s is None:
        return Check("rto", False, f"{rto.probe}: {rto.reason} (target {fmt_s(target_s)})")
    text = (
        f"RTO {fmt_s(rto.rto_s)} ± {fmt_s(rto.rto_error_s)} (probe {rto.probe})"
        f" {'≤' if rto.rto_s <= target_s else '>'} target {fmt_s(target_s)}"
    )
    if not rto.impact_seen:
        text = f"no impact seen by any probe (RTO 0) ≤ target {fmt_s(target_s)}"
    return Check("rto", rto.rto_s <= target_s, text)


def _users_rto_checks(
    target_s: float, users: UsersFigures | None, *, required: bool
) -> list[Check]:
    """The users' RTO, their longest stall and longest wait, each against the tier's RTO."""
    if users is None or users.requests == 0:
        if not required:
            return []
        why = "no load ran" if users is None else users.reason
        return [Check("users-rto", None, f"users' RTO not measured: {why}")]
    target = fmt_s(target_s)
    if not users.recovered or users.rto_s is None:
        checks = [Check("users-rto", False, f"{users.reason} (target {target})")]
    else:
        ok = users.rto_s <= target_s
        text = (
            f"users' RTO {fmt_s(users.rto_s)} ± {fmt_s(users.rto_error_s or 0)}"
            f" {'≤' if ok else '>'} target {target}"
        )
        if users.rto_s == 0:
            text = f"no impact seen by users (RTO 0) ≤ target {target}"
        checks = [Check("users-rto", ok, text)]
    stall = users.longest_stall_s
    if stall is not None:
        ok = stall <= target_s
        checks.append(Check("users-stall", ok,
                            f"users' longest stall {fmt_s(stall)} (waiting, nothing getting"
                            f" through) {'≤' if ok else '>'} target RTO {target}"))  # fmt: skip
    wait = users.longest_wait_s
    if wait is not None:
        # users' RTO dates a stuck request by its send (the probes' rule), so the one user
        # held on a frozen replica while others are served is judged here
        ok = wait <= target_s
        text = (
            f"users' longest wait {fmt_s(wait)} (one request, from its send or the fault)"
            f" {'≤' if ok else '>'} target RTO {target}"
        )
        checks.append(Check("users-wait", ok, text))
    return checks


def _load_figures(measured: Measurements) -> LoadFigures | None:
    """The per-request record's figures when there is one (each request's own answer),
    else Locust's per-second counts."""
    users = measured.users
    if users is None or users.requests == 0:
        return measured.load
    return LoadFigures(
        users.error_rate_during_fault,
        users.p95_back_to_baseline_s,
        users.absent.get("p95_back_to_baseline_s", ""),
        users.p95_during_fault_ms,
        users.absent.get("p95_during_fault_ms", ""),
    )


def _rpo_check(target_s: float, loss: Loss | None) -> Check:
    if loss is None:
        return Check("rpo", None, "RPO not measured: no ledger canary read-back")
    if loss.attempted == 0:
        return Check("rpo", None, "RPO not measured: the canary wrote nothing")
    if target_s == 0 and loss.lost:
        return Check(
            "rpo", False, f"{len(loss.lost)} acknowledged writes lost; the target is RPO 0"
        )
    ok = loss.rpo_s <= target_s
    if loss.rpo_censored and ok:
        # a lower bound within the target proves nothing: the loss may be larger
        return Check(
            "rpo",
            None,
            f"RPO ≥ {fmt_s(loss.rpo_s)}: the canary's first write is lost too, so the loss "
            f"may reach back further than it saw; cannot show it is within target "
            f"{fmt_s(target_s)}",
        )
    at_least = "≥ " if loss.rpo_censored else ""
    canary = f"{len(loss.lost)} canary writes lost of {loss.ok} acknowledged"
    if loss.rpo_source == "database" and loss.rpo_canary_s is not None:
        canary += f"; the canary alone saw {fmt_s(loss.rpo_canary_s)}"
    return Check(
        "rpo",
        ok,
        f"RPO {at_least}{fmt_s(loss.rpo_s)} by the {loss.rpo_source} ({canary})"
        f" {'≤' if ok else '>'} target {fmt_s(target_s)}",
    )


def _load_checks(objective: Objective, load: LoadFigures | None) -> list[Check]:
    checks: list[Check] = []
    limit = objective.max_error_rate_during_fault
    if limit is not None:
        rate = load.error_rate_during_fault if load is not None else None
        if rate is None:
            why = "no load ran" if load is None else "no request was made during the fault"
            checks.append(
                Check("load-errors", None, f"error rate during the fault not measured: {why}")
            )
        else:
            checks.append(Check("load-errors", rate <= limit,
                                f"error rate during the fault {rate:.1%} "
                                f"{'≤' if rate <= limit else '>'} {limit:.1%}"))  # fmt: skip
    slowest = objective.p95_during_fault_s
    if slowest is not None:
        p95_ms = load.p95_during_fault_ms if load is not None else None
        if p95_ms is None:
            why = "no load ran" if load is None else load.p95_during_reason
            checks.append(Check("load-p95-during-fault", None,
                                f"users' p95 during the fault not measured: {why}"))  # fmt: skip
        else:
            ok = p95_ms / 1000 <= slowest
            text = (
                f"p95 of the requests served during the fault {fmt_s(p95_ms / 1000)}"
                f" {'≤' if ok else '>'} {fmt_s(slowest)}"
            )
            checks.append(Check("load-p95-during-fault", ok, text))
    within = objective.p95_back_to_baseline_within_s
    if within is not None:
        if load is None:
            checks.append(Check("load-p95", None, "p95 recovery not measured: no load ran"))
        elif load.p95_back_after_s is None:
            checks.append(
                Check("load-p95", False, f"p95 not back to baseline: {load.p95_back_reason}")
            )
        else:
            back = load.p95_back_after_s
            checks.append(Check("load-p95", back <= within,
                                f"p95 back to baseline {fmt_s(back)} after recovery "
                                f"{'≤' if back <= within else '>'} {fmt_s(within)}"))  # fmt: skip
    return checks


def _anomaly_checks(loss: Loss) -> list[Check]:
    checks = []
    if loss.duplicates:
        checks.append(
            Check("duplicates", False, f"{len(loss.duplicates)} references posted more than once")
        )
    if loss.unexpected:
        checks.append(
            Check("unexpected", False, f"{len(loss.unexpected)} postings nobody attempted")
        )
    if loss.failed_but_present:
        checks.append(
            Check(
                "failed-but-present",
                False,
                f"{len(loss.failed_but_present)} writes refused to the client but applied",
            )
        )
    return checks


def fmt_s(seconds: float) -> str:
    """Seconds for people: 0.84s, 12.3s, 4m05s, 1h30m."""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
