"""One ledgerdrill run inside pytest: the target, platform, journal and results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ledgerdrill import __version__
from ledgerdrill.drill import Drill, DrillOutcome
from ledgerdrill.errors import ConfigError, SafetyViolation
from ledgerdrill.load.profile import find_profile
from ledgerdrill.load.runner import LoadRun
from ledgerdrill.measure import Loss, fmt_s
from ledgerdrill.odoo_api import ErpApi
from ledgerdrill.platforms.base import Platform
from ledgerdrill.platforms.registry import build_platform
from ledgerdrill.probes.base import Probe
from ledgerdrill.probes.canary import LedgerCanary
from ledgerdrill.probes.catalogue import build_canary, build_probes, load_catalogue
from ledgerdrill.report.evidence import build_bundle, sha256
from ledgerdrill.report.history import append_history, read_history
from ledgerdrill.report.html import write_outputs
from ledgerdrill.report.model import (
    EventModel,
    Figures,
    LoadSecond,
    ObjectiveModel,
    ProbeRecovery,
    RunReport,
    ScenarioLoad,
    ScenarioReport,
    UsersModel,
)
from ledgerdrill.safety import DEFAULT_STATE_DIR, FaultJournal, SafetyGuard
from ledgerdrill.safety.baseline import RunBaseline
from ledgerdrill.safety.calendar import require_windows
from ledgerdrill.safety.lock import TargetLock
from ledgerdrill.sandbox.procs import pid_alive
from ledgerdrill.targets import Target, load_target
from ledgerdrill.timeline import Clock, SystemClock, Timeline

NO_LOAD = "none"  # scenarios.<id>.load_profile: none -- the scenario runs without load


class RunSession:
    def __init__(
        self,
        target_path: Path,
        *,
        reports_dir: Path,
        dry_run: bool,
        interval_s: float | None,
        require_platform: str | None,
        confirm_production: str | None,
        state_dir: Path = DEFAULT_STATE_DIR,
        override_blackout: Sequence[str] = (),
        clock: Clock | None = None,
        erp_api: ErpApi | None = None,
    ) -> None:
        self.target: Target = load_target(target_path)  # ConfigError -> usage error
        if erp_api is not None:  # the command line's choice over the file's
            self.target = self.target.model_copy(update={"erp_api": erp_api})
        # a window named on the command line must exist: a typo must not look like consent
        require_windows(self.target.safety.calendar, override_blackout, str(target_path))
        self.override_blackout = tuple(override_blackout)
        # the business calendar's wall time (tests inject a fixed date)
        self.clock: Clock = clock or SystemClock()
        self.dry_run = dry_run
        self.state_dir = state_dir
        self.lock: TargetLock | None = None
        self.interval_s = interval_s or self.target.probes.interval
        self.require_platform = require_platform
        self.confirm_production = confirm_production
        self.journal = FaultJournal(state_dir)
        # the platform as the run's first steady-state gate found it: every scenario must
        # leave it so, and none is drilled while it is not (safety/baseline.py)
        self.baseline = RunBaseline()
        self.run_dir = reports_dir / self.journal.run_id
        self._platform: Platform | None = None
        self._canary: LedgerCanary | None = None  # one for the whole run (probes_for)
        # where load profiles are looked for besides ./loadprofiles and beside the target
        self.profile_folders: list[Path] = []
        self.outputs: list[Path] = []
        self.output_error: str | None = None
        # a bad catalogue is a usage error before anything runs, dry run included
        self.catalogue_path = (
            self.target.resolve_path(self.target.probes.catalogue)
            if self.target.probes.catalogue
            else None
        )
        self.catalogue = load_catalogue(self.catalogue_path) if self.catalogue_path else None
        self.report = RunReport(
            run_id=self.journal.run_id,
            harness_version=__version__,
            target=self.target.name,
            environment=self.target.environment,
            platform=self.target.platform.kind,
            erp_api=self.target.erp_api,
            dry_run=dry_run,
            started_at=datetime.now(UTC),
        )

    def claim_target(self, *, cleanup_first: bool, say: Callable[[str], None] = print) -> None:
        """Before anything is injected: take the target's lock (one drill at a time) and
        make sure no earlier, killed run left a fault behind. A dry run touches nothing
        and needs neither."""
        if self.dry_run:
            return
        self.lock = TargetLock(self.state_dir, self.target.name, self.journal.run_id).acquire()
        if self.lock.previous and self.lock.previous.get("pid"):
            say(f"ledgerdrill: took over a stale lock of run {self.lock.previous.get('run_id')}")
        leftovers = [e for e in self.journal.pending() if not pid_alive(e.pid)]
        if leftovers and cleanup_first:
            from ledgerdrill.cleanup import cleanup

            results = cleanup(self.state_dir, say=say)
            leftovers = [r.entry for r in results if not r.ok and not pid_alive(r.entry.pid)]
        if leftovers:
            self.lock.release()
            listed = "; ".join(e.describe() for e in leftovers)
            raise SafetyViolation(
                f"the fault journal holds {len(leftovers)} fault(s) left by a killed run: "
                f"{listed}. Run `ledgerdrill cleanup` first, or pass --cleanup-first"
            )

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            self._platform = build_platform(self.target)
            self.report.inventory = self._platform.describe()
        return self._platform

    def probes_for(self, scenario: str) -> tuple[list[Probe], LedgerCanary | None]:
        """Fresh probes (and the ledger canary) for one scenario: from the target's
        catalogue filled with the platform's connection facts, else its defaults."""
        if self.dry_run:
            return [], None
        if self.catalogue is None or self.catalogue_path is None:
            return list(self.platform.default_probes()), None
        facts = {**self.platform.probe_facts(), "erp_api": self.target.erp_api}
        probes = build_probes(self.catalogue, facts, self.catalogue_path)
        if self._canary is None:
            # one canary for the whole run (each scenario measures its own window of it);
            # its references are unique across runs: the ERP refuses one posted before
            self._canary = build_canary(
                self.catalogue, facts, self.catalogue_path, self.journal.run_id
            )
            if self._canary is not None:
                self._canary.shared = True
        return probes, self._canary

    def load_profile_name(self, scenario: str, marker_profile: str | None) -> str | None:
        """The scenario's load profile: the target file's ``load_profile`` wins over the
        scenario's ``loadprofile`` marker; ``none`` in the target file turns load off."""
        name = self.target.scenario(scenario).load_profile or marker_profile
        return None if not name or name == NO_LOAD else name

    def load_for(self, scenario: str, marker_profile: str | None) -> LoadRun | None:
        """The scenario's load run. A dry run checks what the run would (the profile
        exists, the platform can be loaded) and starts nothing: a plan that passes where
        the run cannot start would not be the run."""
        name = self.load_profile_name(scenario, marker_profile)
        if name is None:
            return None
        folders = [Path("loadprofiles"), *self.profile_folders]
        if self.target.source is not None:
            folders.insert(0, self.target.source.parent.parent / "loadprofiles")
        profile = find_profile(name, search=list(dict.fromkeys(folders)))
        try:
            facts = self.platform.probe_facts()
        except Exception:
            if not self.dry_run:
                raise
            return None  # a plan of a platform that is not running: it cannot tell
        missing = [k for k in ("entry_url", "database", "login", "password") if k not in facts]
        if missing:
            raise ConfigError(
                f"load profile {name}: the platform gives no {', '.join(missing)} to load with "
                f"(scenarios.{scenario}.load_profile: none runs it without load)"
            )
        if self.dry_run:
            return None
        return LoadRun(
            profile,
            url=facts["entry_url"],
            database=facts["database"],
            login=facts["login"],
            password=facts["password"],
            ca_bundle=facts.get("ca_bundle"),
            erp_api=self.target.erp_api,
            api_key=str(facts.get("api_key") or ""),
            out_dir=self.run_dir / "load" / scenario,
            max_duration_s=self.target.scenario(scenario).recovery_timeout + 120,
            workers=self.target.scenario(scenario).load_workers,
            follow_drill=True,
        )

    def guard(self) -> SafetyGuard:
        return SafetyGuard(
            self.target,
            self.platform,
            confirm_production=self.confirm_production,
            override_blackout=self.override_blackout,
            clock=self.clock,
        )

    def close(self) -> None:
        if self._canary is not None:
            self._canary.stop()
        if self._platform is not None:
            self._platform.close()
        if self.lock is not None:
            self.lock.release()

    # -- results ---------------------------------------------------------------------
    def record(
        self, drill: Drill, outcome: DrillOutcome, nodeid: str, error: str | None = None
    ) -> ScenarioReport:
        timeline = drill.timeline
        timeline_file: str | None = None
        if not self.dry_run:
            path = drill.timeline_path(self.run_dir / "timelines")
            timeline.to_jsonl(path)
            timeline_file = str(path.relative_to(self.run_dir))
        scenario = scenario_report(
            drill, outcome, nodeid, timeline=timeline, timeline_file=timeline_file, error=error
        )
        self.report.scenarios.append(scenario)
        return scenario

    def finish(self) -> Path | None:
        """Write report.json (plan.json in a dry run) once; later calls return its path."""
        if not self.report.scenarios:
            return None
        if self.report.finished_at is None:
            self.report.finished_at = datetime.now(UTC)
            self.report.write(self.report_path)
            if not self.dry_run:
                self._write_outputs()
        return self.report_path

    def _write_outputs(self) -> None:
        """HTML, Markdown, the evidence bundle chained to the previous run's, history.
        A failure here is reported but never loses report.json, written before."""
        reports_dir = self.run_dir.parent
        try:
            self.outputs = write_outputs(self.report, self.run_dir)
            earlier = [r for r in read_history(reports_dir, self.report.target)
                       if r.get("manifest_sha256")]  # fmt: skip
            target_data = (
                yaml.safe_load(self.target.source.read_text(encoding="utf-8"))
                if self.target.source is not None and self.target.source.is_file()
                else self.target.model_dump(mode="json")
            )
            manifest = build_bundle(
                self.report, self.run_dir, target_data=target_data,
                journal_records=self.journal.written,
                previous_manifest_sha256=earlier[-1]["manifest_sha256"] if earlier else None,
                components=self.component_versions(),
            )  # fmt: skip
            self.outputs.append(manifest)
            append_history(self.report, reports_dir, sha256(manifest))
        except Exception as exc:  # the run's verdicts stand; say what is missing
            self.output_error = f"{type(exc).__name__}: {exc}"

    def component_versions(self) -> dict[str, str]:
        described = self.report.inventory.get("versions") if self.report.inventory else None
        return {str(k): str(v) for k, v in described.items()} if isinstance(described, dict) else {}

    @property
    def report_path(self) -> Path:
        return self.run_dir / ("plan.json" if self.dry_run else "report.json")


def scenario_load(drill: Drill, timeline: Timeline) -> ScenarioLoad | None:
    """The load's summary and per-second series, on the scenario's timeline."""
    result, summary = drill.load_result, drill.load_summary
    if result is None or summary is None:
        return None
    origin = timeline.origin.wall.timestamp()
    start = result.started_epoch_s if result.started_epoch_s is not None else origin
    # Locust buckets by whole epoch seconds: bucket t_s starts at floor(start) + t_s
    offset = float(int(start)) - origin
    return ScenarioLoad(
        profile=result.profile,
        summary=summary,
        seconds=[
            LoadSecond(
                t_s=round(offset + s.t_s, 3),
                requests=s.requests,
                failures=s.failures,
                p50_ms=s.p50_ms,
                p95_ms=s.p95_ms,
            )
            for s in result.seconds
        ],
        locust_requests=result.locust_requests,
        locust_failures=result.locust_failures,
        ended_by=result.ended_by,
        cpu_s=result.cpu_s,
        errors=[e.model_dump() for e in result.errors[:20]],
    )


def _total(seconds: list[float]) -> float | None:
    return round(sum(seconds), 3) if seconds else None


def _rpo_witnesses(loss: Loss | None, platform: Platform) -> dict[str, Any]:
    """Both RPO witnesses for the report: the canary's, and the database's when a
    promotion was read (the largest of several; counts added up)."""
    if loss is None:
        return {}
    known = [w for w in loss.database if w.rpo_s is not None]
    database_rpo = max((w.rpo_s for w in known if w.rpo_s is not None), default=None)
    detail = "; ".join(w.detail for w in loss.database) or (
        platform.database_witness_gap() or "no promotion in this scenario"
    )
    return {
        "rpo_source": loss.rpo_source,
        "rpo_canary_s": loss.rpo_canary_s if loss.rpo_canary_s is not None else loss.rpo_s,
        "canary_history_s": loss.canary_history_s,
        "rpo_database_s": database_rpo,
        "rpo_database_detail": detail,
        "lost_commits": sum(w.lost_commits or 0 for w in known if w.acknowledged)
        if known
        else None,
    }


def scenario_report(
    drill: Drill,
    outcome: DrillOutcome,
    nodeid: str,
    *,
    timeline: Timeline,
    timeline_file: str | None,
    error: str | None,
) -> ScenarioReport:
    measured = outcome.measurements
    rto = measured.rto
    loss = measured.loss
    figures = Figures(
        rto_s=rto.rto_s if rto else None,
        rto_error_s=rto.rto_error_s if rto else None,
        recovered=rto.recovered if rto else None,
        time_to_detect_s=measured.time_to_detect_s,
        time_to_detect_error_s=measured.detection.detect_error_s if measured.detection else None,
        downtime_s=max((r.downtime_s for r in measured.recoveries), default=None),
        availability=min(
            (r.availability for r in measured.recoveries if r.availability is not None),
            default=None,
        ),
        rpo_s=loss.rpo_s if loss else None,
        rpo_censored=loss.rpo_censored if loss else None,
        **_rpo_witnesses(loss, drill.platform),
        rpo_vs_restore_point_s=loss.rpo_vs_restore_point_s if loss else None,
        writes_attempted=loss.attempted if loss else None,
        lost_writes=len(loss.lost) if loss else None,
        recovered_writes=len(loss.recovered) if loss else None,
        unexpected_writes=len(loss.unexpected) if loss else None,
        duplicate_writes=len(loss.duplicates) if loss else None,
        users=UsersModel(**dataclasses.asdict(measured.users)) if measured.users else None,
        decision_time_s=_total([step.decision_s for step in drill.steps]),
        runbook_time_s=_total([step.run_s for step in drill.steps if step.run_s is not None]),
    )
    objective = drill.objective
    return ScenarioReport(
        id=drill.scenario_id,
        nodeid=nodeid,
        fault=outcome.fault.kind
        if outcome.fault
        else (outcome.planned[0].fault if outcome.planned else None),
        tier=drill.tier,
        objective=ObjectiveModel(rto_s=objective.rto_s, rpo_s=objective.rpo_s)
        if objective
        else None,
        measured=figures,
        verdict=_verdict_text(drill, outcome),
        reasons=outcome.judgement.reasons,
        checks=[
            {"name": c.name, "passed": c.passed, "text": c.text} for c in outcome.judgement.checks
        ],
        probes=[
            ProbeRecovery(
                probe=r.probe,
                recovered=r.recovered,
                impact_seen=r.impact_seen,
                rto_s=r.rto_s,
                rto_error_s=r.rto_error_s if r.rto_s is not None else None,
                time_to_detect_s=r.time_to_detect_s,
                time_to_detect_error_s=r.detect_error_s,
                downtime_s=r.downtime_s,
                availability=r.availability,
                samples=r.samples_after_inject,
                reason=r.reason,
            )
            for r in measured.recoveries
        ],
        events=[
            EventModel(
                kind=e.kind,
                name=e.name,
                at=e.at.wall,
                t_s=round(e.at.seconds_since(timeline.origin), 3),
                attributes={k: v for k, v in e.attributes.items()},
            )
            for e in timeline.events()
        ],
        planned=outcome.planned,
        actions=list(drill.actions),
        timeline_file=timeline_file,
        load=scenario_load(drill, timeline),
        lost_refs=list(loss.lost[:500]) if loss else [],
        duplicate_refs=list(loss.duplicates[:500]) if loss else [],
        started_at=timeline.origin.wall,
        duration_s=round(timeline.clock.now().seconds_since(timeline.origin), 3),
        error=error,
    )


def _verdict_text(drill: Drill, outcome: DrillOutcome) -> str:
    """A dry run is not judged: its scenarios are PLANNED, or REFUSED by the safety guard."""
    if drill.dry_run:
        return "REFUSED" if outcome.judgement.verdict.value == "FAIL" else "PLANNED"
    if drill.refusal is not None:
        return "REFUSED"
    return outcome.judgement.verdict.value


def junit_properties(scenario: ScenarioReport) -> list[tuple[str, object]]:
    """The measured figures as JUnit properties (CI dashboards read these)."""
    props: list[tuple[str, object]] = [("ledgerdrill.verdict", scenario.verdict)]
    if scenario.tier:
        props.append(("ledgerdrill.tier", scenario.tier))
    if scenario.fault:
        props.append(("ledgerdrill.fault", scenario.fault))
    for name, value in scenario.measured.model_dump(exclude={"users"}).items():
        if value is not None:
            props.append((f"ledgerdrill.{name}", value))
    if scenario.measured.users is not None:  # scalars only: a CI dashboard reads numbers
        for name, value in scenario.measured.users.model_dump().items():
            if value is not None and isinstance(value, int | float | str):
                props.append((f"ledgerdrill.users.{name}", value))
    if scenario.objective is not None:
        if scenario.objective.rto_s is not None:
            props.append(("ledgerdrill.target_rto_s", scenario.objective.rto_s))
        if scenario.objective.rpo_s is not None:
            props.append(("ledgerdrill.target_rpo_s", scenario.objective.rpo_s))
    props.extend((f"ledgerdrill.reason.{i}", r) for i, r in enumerate(scenario.reasons, 1))
    return props


def short(value: float | None) -> str:
    return "—" if value is None else fmt_s(value)
