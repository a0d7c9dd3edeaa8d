"""``Drill``: what a scenario uses to gate, inject, wait, run runbook steps and be judged.

    def test_node_crash(drill, platform):
        drill.steady_state()                       # else INCONCLUSIVE, nothing injected
        with drill.inject(NodeCrash(platform, node="erp-b")):
            drill.wait_for_recovery()              # RTO measured from the samples
        # the plugin concludes: measure, judge against the tier, report

In a dry run ``inject`` only records what would be done (and whether the safety
guard would refuse it); nothing is touched, nothing waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerdrill.dry_run import DryRunInjection, planned_problems
from ledgerdrill.errors import LedgerdrillError, RevertError, SafetyViolation
from ledgerdrill.faults.base import Fault
from ledgerdrill.load.model import LoadResult, LoadSummary, Phase
from ledgerdrill.load.phases import summarise
from ledgerdrill.load.runner import LOAD_RECORD_FLUSH_S, LoadRun
from ledgerdrill.measure import (
    Check,
    InvariantReport,
    Judgement,
    LoadFigures,
    Loss,
    Measurements,
    Objective,
    Recovery,
    StabilityWindow,
    Verdict,
    fmt_s,
    judge,
    measure_recovery,
)
from ledgerdrill.measure.db_loss import (
    PROMOTED_MONO_NS,
    PROMOTION_EVIDENCE,
    DatabaseLoss,
    database_loss,
    with_database_witness,
)
from ledgerdrill.measure.recovery import relapse
from ledgerdrill.measure.users import UserRequest, UsersFigures, measure_users
from ledgerdrill.platforms.base import Platform
from ledgerdrill.platforms.shape import BaselineCheck
from ledgerdrill.probes.base import Probe, ProbeSampler
from ledgerdrill.probes.canary import LedgerCanary, measure_canary
from ledgerdrill.report.model import PlannedAction
from ledgerdrill.runbook.base import RunbookAction
from ledgerdrill.safety import FaultJournal, Injection, SafetyGuard
from ledgerdrill.safety.approval import Approver, after_delay
from ledgerdrill.safety.baseline import RunBaseline, reader
from ledgerdrill.safety.bounded import bounded
from ledgerdrill.safety.runbook_run import StepRecord, run_step
from ledgerdrill.targets import ScenarioSettings, Target
from ledgerdrill.timeline import Instant, Sample, Timeline


class SteadyStateNotMet(LedgerdrillError):
    """The platform was not healthy before injection: the scenario is INCONCLUSIVE."""


@dataclass
class DrillOutcome:
    judgement: Judgement
    measurements: Measurements
    fault: Fault | None
    t_inject: Instant | None
    planned: list[PlannedAction] = field(default_factory=list)


class Drill:
    def __init__(
        self,
        *,
        scenario_id: str,
        target: Target,
        platform: Platform,
        timeline: Timeline,
        journal: FaultJournal,
        guard: SafetyGuard,
        objective: Objective | None,
        tier: str | None,
        probes: Sequence[Probe] = (),
        interval_s: float = 0.2,
        dry_run: bool = False,
        approver: Approver | None = None,
        canary: LedgerCanary | None = None,
        load: LoadRun | None = None,
        load_profile: str | None = None,
        baseline: RunBaseline | None = None,
        approval_by: str = "",
    ) -> None:
        self.scenario_id = scenario_id
        self.target = target
        self.platform = platform
        self.timeline = timeline
        self.journal = journal
        self.guard = guard
        self.objective = objective
        self.tier = tier
        self.probes = list(probes)
        self.interval_s = interval_s
        self.dry_run = dry_run
        # who approves runbook steps (the plugin chains --interactive, hooks and the
        # target's runbook_approval); a bare Drill rehearses with the configured delay
        self.approver: Approver = approver or after_delay(target.safety.runbook_approval_delay)
        self.approval_by = approval_by or "after runbook_approval_delay"
        self.canary = canary
        self._canary_started = False
        self.load = load
        # the profile's name, for the plan (a dry run has a name but no LoadRun)
        self.load_profile = load_profile
        self.load_result: LoadResult | None = None
        self.load_summary: LoadSummary | None = None
        self.users: UsersFigures | None = None
        self.settings: ScenarioSettings = target.scenario(scenario_id)
        self.window = StabilityWindow(target.stability.samples, target.stability.duration)
        self.injections: list[Injection] = []
        self.planned: list[PlannedAction] = []
        # what a real run did, in order, built like ``planned`` so the two compare
        self.actions: list[PlannedAction] = []
        # the safety guard's refusal (a blackout window, an allowlist): verdict REFUSED
        self.refusal: str | None = None
        self.steady_state_ok: bool | None = None
        self.steady_state_detail = ""
        self.loss: Loss | None = None
        self.invariants_after: InvariantReport | None = None
        self.extra_checks: list[Check] = []
        self.outcome: DrillOutcome | None = None
        self._samplers: list[ProbeSampler] = []
        self._last_recovery_wait: float | None = None
        self._recovered_at: Instant | None = None  # when wait_for_recovery saw it
        self._users_gave_up = False  # the users' record was waited on to its bound
        self._users_checked: tuple[Instant, bool] | None = None  # (when, still settling)
        # the run's platform baseline (shared by its scenarios); a bare Drill keeps its own
        self.baseline = baseline if baseline is not None else RunBaseline()
        self.baseline_check: BaselineCheck | None = None
        self.steps: list[StepRecord] = []
        # a runbook step nobody approved: the scenario stops, INCONCLUSIVE
        self.declined: str | None = None
        self.restore_errors: list[Exception] = []

    # -- parameters --------------------------------------------------------------------
    def param(self, name: str, default: Any = None) -> Any:
        """A fault parameter from the target file (``scenarios.<id>.params``)."""
        return self.settings.params.get(name, default)

    # -- probes ------------------------------------------------------------------------
    def watch(self, *probes: Probe) -> None:
        """Add probes (before ``steady_state``); they sample until the drill concludes."""
        self.probes.extend(probes)
        if self._samplers:
            self._start(probes)

    def _start(self, probes: Sequence[Probe]) -> None:
        for probe in probes:
            sampler = ProbeSampler(
                probe,
                self.timeline,
                interval_s=self.probe_interval(probe),
                timeout_s=getattr(probe, "timeout_s", None),
            ).start()
            self._samplers.append(sampler)

    def probe_interval(self, probe: Probe) -> float:
        """A catalogue may sample slow-changing indicators (backup age) less often."""
        own = getattr(probe, "interval_s", None)
        return float(own) if own else self.interval_s

    def probe_resolution(self, probe: Probe) -> float:
        """How finely a probe observes: its interval when its samples overlap (a new one
        every tick while others wait), else its interval or its timeout when longer (a
        sample that runs long leaves that much time unobserved). The RTO error bar itself
        comes from the samples (``Recovery.rto_error_s``)."""
        if getattr(probe, "twin", None) is not None:
            return self.probe_interval(probe)
        return max(self.probe_interval(probe), float(getattr(probe, "timeout_s", 0) or 0))

    def stop_probes(self) -> None:
        for sampler in self._samplers:
            sampler.stop()
        if self.canary is not None and self._canary_started and not self.canary.shared:
            self.canary.stop()  # a shared canary writes on: the run stops it
        if self.load is not None:
            self.load.stop()  # idempotent; never leaves a Locust process

    # -- the steps ---------------------------------------------------------------------
    def steady_state(self, duration_s: float | None = None) -> None:
        """Gate: every probe healthy for the whole window; else ``SteadyStateNotMet``.

        First of all, before any load or probe touches the platform: no drill starts
        inside a blackout window of the business calendar (``SafetyViolation``)."""
        if self.dry_run:
            # the plan shows a blackout on each planned action (the guard's problems)
            if self.load_profile is not None:
                self.planned.append(self._load_action())
            self.steady_state_ok = True
            return
        try:
            overridden = self.guard.check_calendar()
        except SafetyViolation as exc:
            self.refuse(str(exc))
            raise
        for window in overridden:
            self.timeline.event(
                "safety.blackout-overridden", window.name,
                ends_at=window.ends_at.isoformat(), detail=window.describe(),
            )  # fmt: skip
        if not self.probes:
            self._gate_failed("no probes are configured for this target")
        self._platform_at_baseline()
        if self.load is not None and self.load.pid is None:
            # before the gate: the baseline phase is the load before the fault
            self.load.start()
            self.actions.append(self._load_action())
            self.timeline.event("load.started", self.load.profile_path.stem)
        if not self._samplers:
            self._start(self.probes)
        if self.canary is not None and not self._canary_started:
            try:
                if self.canary.running:  # the run's canary, writing since an earlier scenario
                    self.canary.follow(self.timeline)
                else:
                    self.canary.start(self.timeline)
            except Exception as exc:  # a canary that cannot write measures nothing
                self._gate_failed(f"the ledger canary cannot write: {type(exc).__name__}: {exc}")
            self._canary_started = True
        window_s = self.target.probes.steady_state if duration_s is None else duration_s
        settle_s = self.target.probes.settle_timeout
        clock = self.timeline.clock
        start = clock.now()
        clock.sleep(window_s)
        # The platform may still be settling after an earlier scenario (a rejoining
        # standby, a replica rescheduled home): wait, bounded, for a window in which every
        # probe is healthy, rather than call the scenario INCONCLUSIVE on the first look.
        while detail := self._unsteady(window_s):
            waited_s = clock.now().seconds_since(start) - window_s
            if waited_s >= settle_s:
                if settle_s > 0:
                    detail += f" (still after waiting {fmt_s(waited_s)} for it to settle)"
                self._gate_failed(detail)
            clock.sleep(min(self._settle_step_s(), settle_s - waited_s))
        waited_s = max(0.0, clock.now().seconds_since(start) - window_s)
        if self.baseline.reference is None:
            # the run's first gate: the healthy platform, as it reads now, is what every
            # scenario of the run must leave behind
            shape = reader(self.platform)()
            self.baseline.record(self.scenario_id, shape)
            self.timeline.event("platform.baseline", self.scenario_id, shape=shape.summary())
        self.steady_state_ok = True
        self.timeline.event(
            "steady-state.passed", self.scenario_id, window_s=window_s, settled_after_s=waited_s
        )

    def _baseline_json(self) -> dict[str, Any] | None:
        reference = self.baseline.reference
        return reference.to_json() if reference is not None else None

    def _platform_at_baseline(self) -> None:
        """Before anything touches it: a platform an earlier scenario left different from
        the run's baseline is not drilled (it would measure the wrong thing: a zone
        outage of a cluster that already lost its standby proves nothing about RPO 0).
        It may still be healing: wait for it up to ``settle_timeout``."""
        if self.baseline.reference is None:
            return
        check = self.baseline.check(
            self.platform, timeout_s=self.target.probes.settle_timeout, interval_s=1.0
        )
        if check is None or check.restored:
            return
        after = f" after {self.baseline.broken_by}" if self.baseline.broken_by else ""
        self.timeline.event(
            "platform.not-at-baseline", self.scenario_id, differences=list(check.differences)
        )
        self._gate_failed(
            f"the platform is not back to its baseline{after}, so it is not drilled: "
            + "; ".join(check.differences)
        )

    def _settle_step_s(self) -> float:
        return max(0.1, min([self.probe_interval(p) for p in self.probes] or [0.5]))

    def _unsteady(self, window_s: float) -> str:
        """Why the last ``window_s`` was not a steady state ("" when it was)."""
        samples = self.timeline.samples(start=self.timeline.clock.now().plus(-window_s))
        # a probe sampled less often than the window counts with its latest sample
        for probe in self.probes:
            if self.probe_interval(probe) >= window_s:
                seen = self.timeline.samples(probe.name)
                samples += (
                    seen[-1:] if seen and not any(s.probe == probe.name for s in samples) else []
                )
        failing = sorted({s.probe for s in samples if not s.ok})
        silent = sorted({p.name for p in self.probes} - {s.probe for s in samples})
        return "; ".join(
            [f"probe {name} failing: {self._last_detail(name)}" for name in failing]
            + [f"probe {name} gave no sample" for name in silent]
        )

    def _last_detail(self, probe: str) -> str:
        bad = [s for s in self.timeline.samples(probe) if not s.ok]
        return bad[-1].detail if bad else ""

    def _gate_failed(self, detail: str) -> None:
        self.steady_state_ok = False
        self.steady_state_detail = detail
        self.timeline.event("steady-state.failed", self.scenario_id, detail=detail)
        raise SteadyStateNotMet(detail)

    def inject(self, fault: Fault, *, precondition: bool = False) -> Injection | DryRunInjection:
        """Inject ``fault`` (a context manager: leaving it reverts). A ``precondition`` is
        injected, journaled, guarded and reverted like any fault, but does not date the
        drill: the scenario's fault is the first injection that is not one, and RTO, RPO
        and the users' figures are measured from it (a DR link cut *before* a regional
        outage: the outage is the fault, the cut is why its RPO is what it is)."""
        if self.steady_state_ok is None and not self.dry_run:
            raise LedgerdrillError("call drill.steady_state() before drill.inject(...)")
        if self.dry_run:
            overridden = [w.name for w in self.guard.blackouts()[1]]
            dry = DryRunInjection(fault, planned_problems(self.guard, fault), overridden)
            self.planned.append(dry.action)
            return dry
        injection = Injection(
            fault,
            journal=self.journal,
            guard=self.guard,
            timeline=self.timeline,
            target_file=self.target.source,
            on_journaled=self._performed,
            on_injected=self._fault_began,
            baseline=self._baseline_json(),
        )
        injection.precondition = precondition
        self.injections.append(injection)
        return injection

    def _dated(self) -> list[Injection]:
        """The injections that date the fault: all but preconditions (all of them, when a
        scenario injected nothing else)."""
        faults = [i for i in self.injections if not i.precondition]
        return faults or list(self.injections)

    def _load_action(self) -> PlannedAction:
        name = self.load_profile or (self.load.profile.name if self.load else "?")
        return PlannedAction(fault="load", description=f"run load profile {name}", targets=[])

    def _performed(self, injection: Injection) -> None:
        self.actions.append(
            PlannedAction(
                fault=injection.fault.kind,
                description=injection.description,
                targets=injection.touches,
                overrides=[w.name for w in self.guard.blackouts()[1]],
                chosen_when_run=injection.fault.chosen_when_run,
            )
        )

    def _fault_began(self, injection: Injection) -> None:
        dated = [i for i in self.injections if not i.precondition]
        if injection.t_inject is not None and dated[:1] == [injection]:
            self._load_phase("fault", injection.t_inject)

    def _load_phase(self, phase: Phase, since: Instant) -> None:
        """Tell the load which drill phase began (its stages follow the drill's phases)."""
        if self.load is None or self.load.pid is None:
            return
        self.load.enter_phase(phase, since_epoch_s=since.wall.timestamp())
        self.timeline.event("load.phase", phase, at=since)

    def refuse(self, reason: str) -> None:
        """The safety guard refused this scenario: nothing of it is injected."""
        self.refusal = self.refusal or reason
        self.timeline.event("safety.refused", self.scenario_id, reason=reason)

    def wait_for_recovery(self, timeout_s: float | None = None) -> bool:
        """Wait until every RTO probe has been stably healthy since recovering, or timeout."""
        if self.dry_run:
            return True
        t_inject = self._t_inject()
        limit = self.settings.recovery_timeout if timeout_s is None else timeout_s
        self._last_recovery_wait = limit
        clock = self.timeline.clock
        probes_back_at: Instant | None = None  # since when the probes are all back
        while True:
            now = clock.now()
            recoveries = self._recoveries(t_inject, end=now, timeout_s=limit)
            # a probe whose answer is overdue may be hung: its silence is not health
            pending = any(s.overdue() for s in self._samplers if s.probe.counts_for_rto)
            probes_back = bool(recoveries) and all(r.recovered for r in recoveries)
            if not probes_back or pending:
                probes_back_at = None
            elif probes_back_at is None:
                probes_back_at = now
            if probes_back_at is not None and not self._users_settling(
                t_inject, now, limit, probes_back_at
            ):
                self.timeline.event("recovery.observed", self.scenario_id)
                self._recovered_at = now
                self._load_phase("recovery", now)
                return True
            if now.seconds_since(t_inject) > limit + self.window.min_duration_s:
                self.timeline.event("recovery.timeout", self.scenario_id, timeout_s=limit)
                return False
            clock.sleep(self.interval_s)

    def wait_for_detection(self, timeout_s: float | None = None) -> bool:
        """Wait until a probe sees the fault (its first failed sample after injection):
        a runbook step (roll back, rotate, fail over) answers a detected incident. At
        most ``timeout_s``, by default the target's ``probes.detection_timeout``."""
        if self.dry_run:
            return True
        if timeout_s is None:
            timeout_s = self.target.probes.detection_timeout
        t_inject = self._t_inject()
        clock = self.timeline.clock
        names = {p.name for p in self.probes if p.counts_for_rto}
        while clock.now().seconds_since(t_inject) <= timeout_s:
            failed = [
                s for s in self.timeline.samples(start=t_inject) if s.probe in names and not s.ok
            ]
            if failed:
                self.timeline.event("fault.detected", failed[0].probe, at=failed[0].at)
                return True
            clock.sleep(self.interval_s)
        self.timeline.event("fault.not-detected", self.scenario_id, timeout_s=timeout_s)
        return False

    def _users_settling(
        self, t_inject: Instant, now: Instant, limit_s: float, probes_back_at: Instant
    ) -> bool:
        """The probes are back; are the users, by the load's per-request record? Users
        whose requests succeed again but not yet for a stability window are waited for
        (else observation could end before their recovery can be judged, and the users'
        check fails on a platform that is back). So is any request sent before the
        probes came back and still unanswered: it may sit on the failed part (a frozen
        replica holds it until the entry point's timeout) and end as trouble -- its
        outcome is not known yet, like a probe's overdue answer. Bounded: past the RTO
        target (or the recovery wait) plus one window the users' check fails anyway, so
        waiting on proves nothing; a record that cannot be read does not hold the drill."""
        if self.load is None or self.load.pid is None:
            return False
        target_s = self.objective.rto_s if self.objective is not None else None
        bound_s = min(limit_s, target_s) if target_s is not None else limit_s
        if now.seconds_since(t_inject) > bound_s + self.window.min_duration_s:
            if not self._users_gave_up:
                self._users_gave_up = True
                self.timeline.event("recovery.users-not-back", self.scenario_id)
            return False
        # the record grows once a second: reading it more often only repeats the answer
        checked = self._users_checked
        if checked is not None and now.seconds_since(checked[0]) < LOAD_RECORD_FLUSH_S:
            return checked[1]
        try:
            requests = self.load.requests_so_far()
        except OSError:
            return False
        # Two readings, both must say recovered. The record lags by up to one flush, so
        # a stable run is judged only up to what it can have seen; but who is waiting is
        # judged to now -- a user hung since before the last flush is still hung, and cut
        # at the flush its wait would look too short to count (the CI failure of 053eba5)
        inject_s, now_s = t_inject.wall.timestamp(), now.wall.timestamp()
        seen_until = now_s - LOAD_RECORD_FLUSH_S
        back_s = probes_back_at.wall.timestamp()
        # who was waiting when the probes came back is known from the first flush after
        settling = seen_until <= max(inject_s, back_s)
        settling = settling or any(r.end is None and r.start < back_s for r in requests)
        for end in [now_s] if settling else [seen_until, now_s]:
            users = measure_users(requests, t_inject=inject_s, end=end, window=self.window)
            settling = settling or users.recovered is False
        self._users_checked = (now, settling)
        return settling

    def observe(self, seconds: float | None = None) -> None:
        """Keep sampling after the recovery: the recovery window, then -- when the load's
        profile has post-recovery stages (a reconnect storm, a backlog replay) -- until
        they have run on the recovered platform, bounded by the scenario's
        ``recovery_timeout``. Not recovered: no post-recovery load is run."""
        if self.dry_run:
            return
        clock = self.timeline.clock
        clock.sleep(self.settings.observe_after_recovery if seconds is None else seconds)
        if self._recovered_at is None or self.load is None or self.load.pid is None:
            return
        begun = clock.now()
        self._load_phase("post-recovery", begun)
        surge_s = min(self.load.profile.phase_s("post-recovery"), self.settings.recovery_timeout)
        if surge_s > 0:
            clock.sleep(surge_s)
            self.timeline.event(
                "load.post-recovery-ran", self.scenario_id,
                seconds=round(clock.now().seconds_since(begun), 3),
            )  # fmt: skip

    def runbook(self, action: RunbookAction | None) -> StepRecord | None:
        """Run a runbook step: planned in a dry run (with what it would change), else
        approved, journaled, run, verified. A step that recovers from a fault
        (``fault.recovery()``) reverts it when it completes. Returns the step's record
        (None in a dry run, or when ``action`` is None: the fault has no runbook)."""
        if action is None:
            return None
        if self.dry_run:
            self.planned.append(self._step_action(action, refused=self._step_problems(action)))
            return None
        injection = next(
            (i for i in self.injections if action.resolves is not None
             and i.fault is action.resolves), None,
        )  # fmt: skip
        record = run_step(
            action,
            scenario=self.scenario_id,
            journal=self.journal,
            guard=self.guard,
            timeline=self.timeline,
            approver=self.approver,
            call_timeout_s=self.target.safety.fault_call_timeout,
            target_file=self.target.source,
            baseline=self._baseline_json(),
            resolves_entry=injection.entry_id if injection is not None else None,
            on_journaled=self.steps.append,
        )
        self.actions.append(self._step_action(action))
        if injection is not None:
            injection.resolved_by(action.kind)
        return record

    def _step_problems(self, action: RunbookAction) -> list[str]:
        try:
            return self.guard.step_problems(action)
        except Exception as exc:  # the plan shows it rather than crash
            return [f"cannot check {action.kind}: {exc}"]

    def _step_action(self, action: RunbookAction, refused: Sequence[str] = ()) -> PlannedAction:
        try:
            targets = [str(t) for t in action.targets()]
            changes = action.changes()
        except LedgerdrillError as exc:  # the platform cannot be read now (it is down)
            targets, changes = [f"(read when it runs; not now: {exc})"], [action.describe()]
        return PlannedAction(
            fault="runbook",
            description=action.describe(),
            targets=targets,
            refused=list(refused),
            changes=changes,
            approval=self.approval_by,
            after_interrupt=action.after_interrupt,
        )

    # -- measurement -------------------------------------------------------------------
    def _t_inject(self) -> Instant:
        for injection in self._dated():
            if injection.t_inject is not None:
                return injection.t_inject
        raise LedgerdrillError("no fault has been injected yet")

    def _recoveries(
        self, t_inject: Instant, end: Instant | None = None, timeout_s: float | None = None
    ) -> list[Recovery]:
        def observed(name: str) -> list[Sample]:
            samples = self.timeline.samples(name)
            return [s for s in samples if end is None or s.at.mono_ns < end.mono_ns]

        return [
            measure_recovery(
                observed(p.name),
                t_inject,
                interval_s=self.probe_resolution(p),
                window=self.window,
                timeout_s=timeout_s,
                end=end,
            )
            for p in self.probes
            if p.counts_for_rto
        ]

    def record_loss(self, loss: Loss) -> None:
        self.loss = loss

    def record_invariants(self, report: InvariantReport) -> None:
        self.invariants_after = report

    def add_check(self, check: Check) -> None:
        self.extra_checks.append(check)

    def conclude(self) -> DrillOutcome:
        """Stop probes, measure and judge. Safe to call more than once."""
        if self.outcome is not None:
            return self.outcome
        self.stop_probes()
        if self.dry_run:
            return self._conclude_plan()
        if self.refusal is not None:
            return self._conclude_refused(self.refusal)
        self.restore_platform()
        for event in self.platform.events_between(self.timeline.origin, self.timeline.clock.now()):
            self.timeline.add_event(event)
        for step in self.steps:
            step.action.after_recovery(self.timeline)
        dated = self._dated()
        fault = dated[0].fault if dated else None
        t_inject = next((i.t_inject for i in dated if i.t_inject), None)
        if t_inject is not None and self.loss is None and self._canary_started:
            self._measure_canary(t_inject, fault)
        recoveries: list[Recovery] = []
        end: Instant | None = None
        # a declined runbook step called the drill off: its recovery was not measured
        if t_inject is not None and self.declined is None:
            timeout = self._last_recovery_wait or self.settings.recovery_timeout
            # observation of the fault ends when its revert begins (a fail-back or a
            # certificate put back is not the fault's recovery), else now
            end = self._first_revert_or_now()
            recoveries = self._recoveries(t_inject, end=end, timeout_s=timeout)
            if self._recovered_at is not None:
                self._check_relapse(self._recovered_at, end, recoveries)
        load_figures = self._measure_load(t_inject, recoveries) if self.load is not None else None
        users = self._measure_users(t_inject, end, recoveries) if self.load is not None else None
        if self.declined is not None:
            self.add_check(Check("runbook", None, self.declined))
        if self.baseline_check is not None:
            check = self.baseline_check
            self.add_check(Check("platform-restored", check.restored, check.text()))
        elif self.restore_errors:
            text = f"a revert failed, the platform is not restored: {self.restore_errors[0]}"
            self.add_check(Check("platform-restored", False, text))
        measured = Measurements(
            steady_state_ok=bool(self.steady_state_ok),
            steady_state_detail=self.steady_state_detail or "the gate was never run",
            recoveries=recoveries,
            loss=self.loss,
            invariants_after=self.invariants_after,
            extra_checks=tuple(self.extra_checks),
            load=load_figures,
            users=users,
        )
        objective = self.objective or Objective(rto_s=None, rpo_s=None)
        judgement = judge(objective, measured)
        self.timeline.event("verdict", judgement.verdict.value, reasons=judgement.reasons)
        self.outcome = DrillOutcome(judgement, measured, fault, t_inject, list(self.planned))
        return self.outcome

    def _check_relapse(self, seen: Instant, end: Instant, recoveries: list[Recovery]) -> None:
        """A probe that failed again after the drill saw the platform recovered (under the
        post-recovery surge, say): an event per probe and a failed check. Its RTO already
        counts to the final stable recovery (``measure_recovery``)."""
        found = [
            found
            for probe in self.probes
            if probe.counts_for_rto
            and (found := relapse(self.timeline.samples(probe.name), recovered_seen=seen, end=end))
        ]
        if not found:
            return
        for each in found:
            self.timeline.event(
                "recovery.relapsed", each.probe, at=each.at, detail=each.detail,
                after_recovery_s=round(each.after_recovery_s, 3),
            )  # fmt: skip
        first = min(found, key=lambda r: r.at.mono_ns)
        surge = self.load.phase_began("post-recovery") if self.load is not None else None
        during = (
            " under the post-recovery load"
            if surge is not None and surge <= first.at.wall.timestamp()
            else ""
        )
        slowest = Measurements(steady_state_ok=True, recoveries=recoveries).rto
        if slowest is not None and slowest.recovered and slowest.rto_s is not None:
            then = f"recovered again: the RTO, {fmt_s(slowest.rto_s)}, counts to that recovery"
        else:
            then = "not recovered again before observation ended"
        detail = f": {first.detail}" if first.detail else ""
        self.add_check(
            Check(
                "relapse",
                False,
                f"the platform failed again {fmt_s(first.after_recovery_s)} after it was seen "
                f"recovered{during} (probe {first.probe}{detail}); {then}",
            )
        )

    def _measure_load(
        self, t_inject: Instant | None, recoveries: list[Recovery]
    ) -> LoadFigures | None:
        """Split the load into phases at the fault and the recovery (RTO's probe)."""
        assert self.load is not None
        try:
            result = self.load_result = self.load.result()
        except Exception as exc:  # a broken load run is reported, not fatal
            self.add_check(Check("load", None, f"load results unreadable: {exc}"))
            return None
        origin = result.started_epoch_s
        t_inject_s = t_recovered_s = None
        if t_inject is not None and origin is not None:
            t_inject_s = t_inject.wall.timestamp() - origin
            slowest = Measurements(steady_state_ok=True, recoveries=recoveries).rto
            if slowest is not None and slowest.recovered and slowest.rto_s is not None:
                t_recovered_s = t_inject_s + slowest.rto_s
        # the post-recovery phase began when the drill told the load (its surge ran then)
        post_epoch = self.load.phase_began("post-recovery")
        t_post_s = None
        if post_epoch is not None and origin is not None and t_recovered_s is not None:
            t_post_s = max(post_epoch - origin, t_recovered_s)
        try:  # each request in the phase its answer fell in, when the record is there
            requests: list[UserRequest] | None = self.load.user_requests() or None
        except Exception:  # the users' figures report an unreadable record
            requests = None
        summary = self.load_summary = summarise(
            result, t_inject_s, t_recovered_s, t_post_recovery_s=t_post_s,
            requests=requests, origin_epoch_s=origin,
        )  # fmt: skip
        fault_phase = next((p for p in summary.phases if p.phase == "fault"), None)
        rate = fault_phase.error_rate if fault_phase is not None and fault_phase.requests else None
        return LoadFigures(rate, summary.p95_back_after_s, summary.p95_back_reason)

    def _measure_users(
        self, t_inject: Instant | None, end: Instant | None, recoveries: list[Recovery]
    ) -> UsersFigures | None:
        """What users lived through, from the load's per-request record, over the same
        observation as the probes (the fault until its revert began)."""
        assert self.load is not None
        if t_inject is None or end is None:
            return None
        try:
            requests = self.load.user_requests()
        except Exception as exc:  # a broken record is reported, not fatal
            self.add_check(Check("users", None, f"users' request record unreadable: {exc}"))
            return None
        slowest = Measurements(steady_state_ok=True, recoveries=recoveries).rto
        fault_end = None
        if slowest is not None and slowest.recovered and slowest.rto_s is not None:
            fault_end = t_inject.wall.timestamp() + slowest.rto_s
        self.users = measure_users(
            requests,
            t_inject=t_inject.wall.timestamp(),
            end=max(end.wall.timestamp(), t_inject.wall.timestamp()),
            fault_end=fault_end,
            window=self.window,
        )
        return self.users

    def _measure_canary(self, t_inject: Instant, fault: Fault | None) -> None:
        assert self.canary is not None
        restore_iso = getattr(fault, "restore_point", None)
        restore_point = self.instant_at(restore_iso) if isinstance(restore_iso, str) else None
        try:
            loss, invariants = measure_canary(self.canary, t_inject, restore_point=restore_point)
        except Exception as exc:  # the ERP may still be down: loss is then unmeasured
            self.add_check(Check("canary-read-back", False, f"{type(exc).__name__}: {exc}"))
            return
        self.loss = with_database_witness(loss, self._database_witnesses(t_inject))
        if self.loss.witness_conflict:
            self.add_check(Check("rpo-witnesses", False, self.loss.witness_conflict))
        if self.invariants_after is None:
            self.invariants_after = invariants

    def _database_witnesses(self, t_inject: Instant) -> list[DatabaseLoss]:
        """The database's account of each promotion between the fault and the first
        revert (a fail-back's own switchover is the revert's, not the fault's)."""
        until = self._first_revert_or_now()
        found = []
        for event in self.timeline.events(kind=PROMOTION_EVIDENCE):
            promoted = event.attributes.get(PROMOTED_MONO_NS, event.at.mono_ns)
            if isinstance(promoted, int) and t_inject.mono_ns <= promoted <= until.mono_ns:
                found.append(database_loss(event.name, event.attributes, t_inject))
        return found

    def _first_revert_or_now(self) -> Instant:
        """When observation of the fault ends: its first revert began, else now."""
        reverts = [i.t_teardown for i in self.injections if i.t_teardown is not None]
        return min(reverts, key=lambda t: t.mono_ns) if reverts else self.timeline.clock.now()

    def instant_at(self, wall_iso: str) -> Instant:
        """The timeline instant of a wall-clock time (a database's restore point)."""
        wall = datetime.fromisoformat(wall_iso)
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=UTC)
        origin = self.timeline.origin
        offset_ns = int((wall - origin.wall).total_seconds() * 1e9)
        return Instant(origin.mono_ns + offset_ns, wall.astimezone(UTC))

    def _conclude_plan(self) -> DrillOutcome:
        refused = [r for action in self.planned for r in action.refused]
        check = Check(
            "plan",
            not refused,
            "; ".join(refused) if refused else f"{len(self.planned)} planned actions allowed",
        )
        verdict = Verdict.REFUSED if refused else Verdict.PLANNED
        measured = Measurements(steady_state_ok=True, steady_state_detail="dry run")
        self.outcome = DrillOutcome(
            Judgement(verdict, (check,)), measured, None, None, self.planned
        )
        return self.outcome

    def _conclude_refused(self, reason: str) -> DrillOutcome:
        measured = Measurements(steady_state_ok=False, steady_state_detail="refused")
        judgement = Judgement(Verdict.REFUSED, (Check("safety", False, reason),))
        self.timeline.event("verdict", judgement.verdict.value, reasons=judgement.reasons)
        fault = self.injections[0].fault if self.injections else None
        self.outcome = DrillOutcome(judgement, measured, fault, None, list(self.planned))
        return self.outcome

    def restore_platform(self) -> None:
        """Revert whatever is still injected, let the platform settle (a restored
        database adopted back into HA), then read the platform back and compare it with
        the run's baseline, waiting (bounded by ``safety.baseline_timeout``) for what it
        heals by itself. Idempotent. Failed reverts are kept (``close`` raises them)."""
        if self.dry_run or self.baseline_check is not None or self.restore_errors:
            return
        if not any(i.entry_id for i in self.injections) and not self.steps:
            return  # nothing was touched
        errors: list[Exception] = self._finish_interrupted_steps()
        for injection in reversed(self.injections):
            try:
                injection.revert()
            except Exception as exc:  # keep reverting the others; report all
                errors.append(exc)
        if errors:
            self.restore_errors = errors
            return
        try:
            limit = self.target.safety.fault_call_timeout
            for done in bounded(self.platform.settle, limit, "settling the platform"):
                self.timeline.event("platform.settled", done)
        except Exception as exc:  # the comparison below says what is left
            self.timeline.event("platform.settle-failed", self.scenario_id, error=str(exc))
        check = self.baseline.check(
            self.platform, timeout_s=self.target.safety.baseline_timeout, interval_s=1.0
        )
        if check is None:
            return
        self.baseline_check = check
        self.baseline.after_scenario(self.scenario_id, check)
        if check.restored:
            waited = round(check.waited_s, 3)
            self.timeline.event("platform.restored", self.scenario_id, waited_s=waited)
        else:
            self.timeline.event(
                "platform.not-restored", self.scenario_id, differences=list(check.differences)
            )

    def _finish_interrupted_steps(self) -> list[Exception]:
        """Runbook steps journaled but not done (an interrupt or a failure inside them)
        are finished as ``cleanup`` would finish them, so the journal holds nothing
        pending and the platform is not left half way through a step."""
        errors: list[Exception] = []
        limit = self.target.safety.fault_call_timeout
        for step in reversed(self.steps):
            if step.entry_id is None or step.done_at or step.finished_after_interrupt:
                continue
            kind = step.action.kind
            try:
                said = bounded(step.action.finish_after_interrupt, limit, f"finishing {kind}")
            except Exception as exc:  # stays pending in the journal for `cleanup`
                self.journal.mark(step.entry_id, "revert-failed", error=str(exc))
                self.timeline.event("runbook.finish-failed", kind, error=str(exc))
                errors.append(exc)
                continue
            self.journal.mark(step.entry_id, "done")
            step.finished_after_interrupt = said
            self.timeline.event("runbook.finished-after-interrupt", kind, result=said)
        return errors

    def close(self) -> None:
        """Teardown: stop probes, revert anything still injected, settle, and check the
        platform reads back as before the drill (always). Not restored is loud: a
        ``RevertError`` naming what differs, so the run exits non-zero."""
        self.stop_probes()
        self.restore_platform()
        if self.restore_errors:
            raise self.restore_errors[0]
        check = self.baseline_check
        if check is not None and not check.restored:
            raise RevertError(
                f"{self.scenario_id}: the platform is NOT back to how it was before the drill: "
                + "; ".join(check.differences)
                + ". Run `ledgerdrill cleanup` and check the platform by hand."
            )

    def timeline_path(self, folder: Path) -> Path:
        return folder / f"{self.scenario_id}.timeline.jsonl"
