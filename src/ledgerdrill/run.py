"""One ledgerdrill run inside pytest: the target, platform, journal and results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ledgerdrill import __version__
from ledgerdrill.drill import Drill, DrillOutcome
from ledgerdrill.errors import (
    ConfigError,
    LedgerdrillError,
    SafetyViolation,
    UnsupportedCapability,
)
from ledgerdrill.load.profile import find_profile
from ledgerdrill.load.runner import LoadRun
from ledgerdrill.measure import Objective, fmt_s
from ledgerdrill.odoo_api import ErpApi
from ledgerdrill.platforms.base import CAPABILITIES, Platform
from ledgerdrill.platforms.registry import build_platform
from ledgerdrill.probes.base import Probe
from ledgerdrill.probes.canary import LedgerCanary
from ledgerdrill.probes.catalogue import build_canary, build_probes, load_catalogue
from ledgerdrill.report.evidence import build_bundle, sha256
from ledgerdrill.report.history import append_history, read_history
from ledgerdrill.report.html import write_outputs
from ledgerdrill.report.model import (
    RunReport,
    ScenarioReport,
)
from ledgerdrill.report.scenario import scenario_report
from ledgerdrill.safety import DEFAULT_STATE_DIR, FaultJournal, SafetyGuard
from ledgerdrill.safety.approval import Approver
from ledgerdrill.safety.baseline import RunBaseline
from ledgerdrill.safety.calendar import require_windows
from ledgerdrill.safety.journal import refuse_leftovers
from ledgerdrill.safety.lock import TargetLock
from ledgerdrill.targets import Target, load_target
from ledgerdrill.timeline import Clock, SystemClock, Timeline

NO_LOAD = "none"  # scenarios.<id>.load_profile: none -- the scenario runs without load
CAPABILITY_NAMES = {c.__name__: c for c in CAPABILITIES}


class MisdeclaredScenario(ConfigError):
    """A scenario asks for what does not exist (a capability, a tier): the scenario's
    author must fix it, whatever the platform."""


class ScenarioUnavailable(LedgerdrillError):
    """This platform cannot run the scenario (a capability it lacks, probes it cannot
    give): skipped, or failed when the user required the platform."""


@dataclass(frozen=True)
class ScenarioSpec:
    """What a scenario declares about itself (in pytest: its markers)."""

    scenario_id: str
    requires: tuple[str, ...] = ()  # capability names
    tier: str | None = None
    objective: Objective | None = None  # used when no tier of the target applies
    load_profile: str | None = None


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
        if cleanup_first and self.journal.left_by_killed_runs():
            from ledgerdrill.cleanup import cleanup

            cleanup(self.state_dir, say=say)
        try:
            refuse_leftovers(self.journal.left_by_killed_runs())
        except SafetyViolation:
            self.lock.release()
            raise

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

    def drill_for(
        self,
        spec: ScenarioSpec,
        *,
        timeline: Timeline,
        approver: Approver,
        approval_by: str,
    ) -> Drill:
        """The drill of one scenario, everything it needs from this run assembled:
        capabilities checked, tier and objective chosen, probes, canary and load built.
        Raises ``MisdeclaredScenario``, ``ConfigError`` (the user's files) or
        ``ScenarioUnavailable``."""
        platform = self.platform
        for name in spec.requires:
            capability = CAPABILITY_NAMES.get(name)
            if capability is None:
                raise MisdeclaredScenario(
                    f"requires({name!r}): unknown capability "
                    f"(allowed: {', '.join(CAPABILITY_NAMES)})"
                )
            try:
                platform.capability(capability)
            except UnsupportedCapability as missing:
                raise ScenarioUnavailable(str(missing)) from missing
        sid = spec.scenario_id
        tier = self.target.tier_for(sid, spec.tier)
        if tier is not None and tier not in self.target.tiers:
            raise MisdeclaredScenario(
                f"tier {tier!r} is not defined in {self.target.source} "
                f"(defined tiers: {', '.join(self.target.tiers)})"
            )
        objective = self.target.tiers[tier].objective() if tier is not None else spec.objective
        try:
            probes, canary = self.probes_for(sid)
            load = self.load_for(sid, spec.load_profile)
        except ConfigError:
            raise  # the user's catalogue or profile is wrong: not a reason to skip
        except LedgerdrillError as exc:
            raise ScenarioUnavailable(f"probes unavailable: {exc}") from exc
        return Drill(
            scenario_id=sid,
            target=self.target,
            platform=platform,
            timeline=timeline,
            journal=self.journal,
            guard=self.guard(),
            objective=objective,
            tier=tier,
            probes=probes,
            canary=canary,
            load=load,
            load_profile=self.load_profile_name(sid, spec.load_profile),
            interval_s=self.interval_s,
            dry_run=self.dry_run,
            approver=approver,
            approval_by=approval_by,
            baseline=self.baseline,
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


def short(value: float | None) -> str:
    return "—" if value is None else fmt_s(value)
