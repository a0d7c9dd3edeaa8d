"""The ledgerdrill pytest plugin (entry point ``pytest11``).

Options (each with an ini twin): ``--target``, ``--dry-run``, ``--reports-dir``,
``--probe-interval``, ``--require-platform``, ``--confirm-production``,
``--override-blackout`` (repeatable; ini: names separated by spaces).
Markers: ``tier(name)``, ``requires(capability)``, ``objective(rto=, rpo=)``,
``loadprofile(name)``. Fixtures: ``target``, ``platform``, ``timeline``, ``drill``.
A scenario that uses ``drill`` is measured and judged when its body returns: FAIL
fails the test, INCONCLUSIVE skips it (or fails, with ``ledgerdrill_inconclusive=fail``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill import hookspecs
from ledgerdrill.drill import Drill, SteadyStateNotMet
from ledgerdrill.durations import parse_duration
from ledgerdrill.errors import (
    ConfigError,
    LedgerdrillError,
    SafetyViolation,
)
from ledgerdrill.measure import Objective, Verdict
from ledgerdrill.odoo_api import ERP_APIS
from ledgerdrill.platforms.base import Platform
from ledgerdrill.report.live import LiveProgress
from ledgerdrill.report.scenario import junit_properties
from ledgerdrill.report.summary import plan_text, terminal_table
from ledgerdrill.run import MisdeclaredScenario, RunSession, ScenarioSpec, ScenarioUnavailable
from ledgerdrill.safety import approval, install_termination_handler
from ledgerdrill.safety.approval import Approver
from ledgerdrill.safety.runbook_run import RunbookDeclined
from ledgerdrill.targets import Target
from ledgerdrill.timeline import Clock, SystemClock, Timeline

RUN_KEY = pytest.StashKey[RunSession | None]()
DRILL_KEY = pytest.StashKey[Drill]()
# the wall clock the business calendar reads: a test's plugin may put a FakeClock here
# in its own ``pytest_configure(tryfirst=True)`` to run a drill on a fixed date
CALENDAR_CLOCK_KEY = pytest.StashKey[Clock]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ledgerdrill", "ledgerdrill chaos drills")

    def add(flag: str, ini: str, help_text: str, **kwargs: Any) -> None:
        group.addoption(flag, dest=ini, help=f"{help_text} (ini: {ini})", **kwargs)
        if kwargs.get("action") == "store_true":
            parser.addini(ini, help=help_text, type="bool", default=False)
        else:
            parser.addini(ini, help=help_text, type="string", default=None)

    add("--target", "ledgerdrill_target", "target file (YAML) to drill", metavar="FILE")
    add("--dry-run", "ledgerdrill_dry_run", "print what would be done; touch nothing",
        action="store_true")  # fmt: skip
    add("--reports-dir", "ledgerdrill_reports_dir", "where runs write reports (default reports)",
        metavar="DIR")  # fmt: skip
    add("--probe-interval", "ledgerdrill_probe_interval",
        "probe sampling interval, e.g. 200ms (default: the target's)",
        metavar="DURATION")  # fmt: skip
    add("--erp-api", "ledgerdrill_erp_api",
        "the ERP API probes, canary and load speak: jsonrpc or json2 (default: the target's "
        "erp_api)", metavar="API")  # fmt: skip
    add("--require-platform", "ledgerdrill_require_platform",
        "fail instead of skip when this platform kind (or a capability) is unavailable",
        metavar="KIND")  # fmt: skip
    add("--confirm-production", "ledgerdrill_confirm_production",
        "the production target's name, to allow drilling it", metavar="NAME")  # fmt: skip
    group.addoption(
        "--override-blackout", dest="ledgerdrill_override_blackout", action="append",
        metavar="WINDOW", help="drill although this blackout window of the target's business "
        "calendar is in effect (repeatable; recorded in the journal and the report) "
        "(ini: ledgerdrill_override_blackout)",
    )  # fmt: skip
    parser.addini(
        "ledgerdrill_override_blackout",
        help="blackout windows to override, separated by spaces",
        type="args",
        default=[],
    )
    add("--cleanup-first", "ledgerdrill_cleanup_first",
        "revert faults a killed run left in the journal before starting",
        action="store_true")  # fmt: skip
    add("--interactive", "ledgerdrill_interactive",
        "pause at each runbook step for a person to approve it on the terminal (the wait "
        "counts in the measured RTO)", action="store_true")  # fmt: skip
    parser.addini(
        "ledgerdrill_inconclusive",
        "outcome of an INCONCLUSIVE scenario: skip (default) or fail",
        default="skip",
    )


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    if value in (None, False):
        value = config.getini(name)
    return value


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "tier(name): the finance tier whose objectives judge this scenario",
        "requires(capability): platform capability needed, e.g. NodeControl; skip without it",
        "objective(rto=None, rpo=None): objectives (durations) when the target maps no tier",
        "loadprofile(name): the load profile to run during this scenario",
    ):
        config.addinivalue_line("markers", line)
    config.stash[RUN_KEY] = None
    target = _option(config, "ledgerdrill_target")
    if not target:
        return
    interval = _option(config, "ledgerdrill_probe_interval")
    erp_api = _option(config, "ledgerdrill_erp_api")
    if erp_api not in (None, *ERP_APIS):
        raise pytest.UsageError(f"--erp-api {erp_api}: allowed: {', '.join(ERP_APIS)}")
    try:
        run = RunSession(
            Path(target),
            reports_dir=Path(_option(config, "ledgerdrill_reports_dir") or "reports"),
            dry_run=bool(_option(config, "ledgerdrill_dry_run")),
            interval_s=parse_duration(interval) if interval else None,
            require_platform=_option(config, "ledgerdrill_require_platform"),
            confirm_production=_option(config, "ledgerdrill_confirm_production"),
            override_blackout=list(_option(config, "ledgerdrill_override_blackout") or []),
            clock=config.stash.get(CALENDAR_CLOCK_KEY, None),
            erp_api=erp_api,
        )
        run.profile_folders.append(config.rootpath / "loadprofiles")
        run.claim_target(cleanup_first=bool(_option(config, "ledgerdrill_cleanup_first")))
    except (ConfigError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    except SafetyViolation as exc:
        raise pytest.UsageError(f"refused: {exc}") from None
    config.stash[RUN_KEY] = run
    config.add_cleanup(install_termination_handler())


def _run(config: pytest.Config) -> RunSession | None:
    return config.stash.get(RUN_KEY, None)


def _unavailable(run: RunSession | None, reason: str) -> None:
    """Skip with the reason, or fail when the user required the platform."""
    if run is not None and run.require_platform:
        pytest.fail(f"required platform {run.require_platform!r}: {reason}", pytrace=False)
    pytest.skip(reason)


def scenario_id(item: pytest.Item) -> str:
    name = getattr(item, "originalname", None) or item.name
    base = name.removeprefix("test_").replace("_", "-")
    callspec = getattr(item, "callspec", None)
    return f"{base}[{callspec.id}]" if callspec is not None else base


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    run = _run(request.config)
    if run is None:
        _unavailable(None, "no target given: use --target FILE or the ledgerdrill_target ini key")
        raise AssertionError("unreachable")
    return run.target


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest, target: Target) -> Platform:
    run = _run(request.config)
    assert run is not None
    if run.require_platform and run.require_platform not in (target.platform.kind, "any"):
        pytest.fail(
            f"--require-platform {run.require_platform} but target {target.name} is "
            f"{target.platform.kind}",
            pytrace=False,
        )
    try:
        return run.platform
    except LedgerdrillError as exc:
        _unavailable(run, f"platform {target.platform.kind} unavailable: {exc}")
        raise AssertionError("unreachable") from exc


@pytest.fixture
def timeline(request: pytest.FixtureRequest) -> Timeline:
    return Timeline(SystemClock(), scenario=scenario_id(request.node))


@pytest.fixture
def drill(
    request: pytest.FixtureRequest, target: Target, platform: Platform, timeline: Timeline
) -> Iterator[Drill]:
    run = _run(request.config)
    assert run is not None
    item = request.node
    tier_marker = item.get_closest_marker("tier")
    profile_marker = item.get_closest_marker("loadprofile")
    approver, approval_by = _approver(request.config, item, target)
    try:
        spec = ScenarioSpec(
            scenario_id(item),
            requires=tuple(str(n) for m in item.iter_markers("requires") for n in m.args),
            tier=tier_marker.args[0] if tier_marker else None,
            objective=_marker_objective(item),
            load_profile=str(profile_marker.args[0]) if profile_marker else None,
        )
        the_drill = run.drill_for(
            spec, timeline=timeline, approver=approver, approval_by=approval_by
        )
    except MisdeclaredScenario as exc:  # the scenario's author must fix it: no traceback
        pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
    except ConfigError as exc:  # the user's catalogue is wrong: not a reason to skip
        pytest.fail(str(exc), pytrace=False)
    except ScenarioUnavailable as exc:
        _unavailable(run, str(exc))
        raise AssertionError("unreachable") from exc
    item.stash[DRILL_KEY] = the_drill
    progress = None if run.dry_run else _live_progress(request.config, the_drill)
    try:
        yield the_drill
    finally:
        if progress is not None:
            progress.stop()
    the_drill.close()  # reverts anything still injected, loudly on failure


def _live_progress(config: pytest.Config, drill: Drill) -> LiveProgress | None:
    """One line of progress per scenario, written around pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or config.option.verbose < 0:
        return None
    in_place = bool(getattr(reporter, "isatty", False))

    def emit(line: str, rewrite: bool) -> None:
        with capture.global_and_fixture_disabled():
            if rewrite:
                reporter.rewrite(line, erase=True)
            else:
                reporter.write_line(line)

    rto = drill.objective.rto_s if drill.objective else None
    return LiveProgress(
        drill.scenario_id, drill.timeline, rto_target_s=rto, emit=emit, in_place=in_place
    ).start()


def _approver(config: pytest.Config, item: pytest.Item, target: Target) -> tuple[Approver, str]:
    """Who approves this run's runbook steps (``safety.approval``), and how to say so."""
    if _option(config, "ledgerdrill_interactive"):
        return approval.on_terminal(), "the operator on the terminal (--interactive)"
    settings = target.safety.runbook_approval
    fallback: Approver
    if settings.by == "environment":
        fallback = approval.from_environment()
        said = f"the environment ({approval.APPROVE_ENV} / {approval.REJECT_ENV})"
    elif settings.by == "file":
        path = target.resolve_path(str(settings.file))
        fallback = approval.from_file(path, timeout_s=settings.timeout)
        said = f"the approvals file {path} (waits up to {settings.timeout:g}s)"
    elif settings.by == "terminal":
        fallback = approval.on_terminal()
        said = "the operator on the terminal"
    else:
        delay = target.safety.runbook_approval_delay
        fallback = approval.after_delay(delay)
        said = f"nobody: approved after {delay:g}s (runbook_approval_delay, a rehearsal)"
    hook = config.hook.pytest_ledgerdrill_approve_runbook_step
    if not hook.get_hookimpls():
        return fallback, said

    def ask_hook(request: approval.ApprovalRequest) -> approval.Decision | None:
        answer = hook(drill=item.stash[DRILL_KEY], step=request.description, action=request.action)
        if answer is None:
            return None
        return approval.Decision(bool(answer), "a pytest_ledgerdrill_approve_runbook_step hook")

    return approval.chain([ask_hook], fallback), f"a hook, else {said}"


def _marker_objective(item: pytest.Item) -> Objective | None:
    marker = item.get_closest_marker("objective")
    if marker is None:
        return None
    rto, rpo = marker.kwargs.get("rto"), marker.kwargs.get("rpo")
    witness = marker.kwargs.get("rto_measured_by", "both")
    if witness not in ("probes", "users", "both"):
        raise MisdeclaredScenario(
            f"objective(rto_measured_by={witness!r}): allowed are 'probes', 'users' and 'both'"
        )
    return Objective(
        rto_s=parse_duration(rto) if isinstance(rto, str) else rto,
        rpo_s=parse_duration(rpo) if isinstance(rpo, str) else rpo,
        rto_measured_by=witness,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    error: str | None = None
    gate_failed = False
    try:
        result = yield
    except SteadyStateNotMet:
        gate_failed = True
        result = None
    except SafetyViolation as refused:  # the guard said no: REFUSED, one clear line
        if DRILL_KEY not in item.stash:
            raise
        item.stash[DRILL_KEY].refuse(str(refused))
        result = None
    except RunbookDeclined as declined:  # nobody approved: the drill stops, INCONCLUSIVE
        if DRILL_KEY not in item.stash:
            raise
        item.stash[DRILL_KEY].declined = str(declined)
        result = None
    except BaseException as exc:
        if DRILL_KEY in item.stash:
            error = f"{type(exc).__name__}: {exc}"
            _conclude(item, error)
        raise
    if DRILL_KEY not in item.stash:
        return result
    scenario = _conclude(item, error)
    verdict = scenario.verdict
    if verdict == Verdict.REFUSED:
        pytest.fail(f"REFUSED by the safety guard: {'; '.join(scenario.reasons)}", pytrace=False)
    if verdict == Verdict.FAIL:
        pytest.fail(f"FAIL: {'; '.join(scenario.reasons)}", pytrace=False)
    if verdict == Verdict.INCONCLUSIVE or gate_failed:
        message = f"INCONCLUSIVE: {'; '.join(scenario.reasons)}"
        if item.config.getini("ledgerdrill_inconclusive") == "fail":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return result


def _conclude(item: pytest.Item, error: str | None) -> Any:
    run = _run(item.config)
    drill = item.stash[DRILL_KEY]
    assert run is not None
    outcome = drill.conclude()
    scenario = run.record(drill, outcome, item.nodeid, error)
    for name, value in junit_properties(scenario):
        item.user_properties.append((name, value))
    item.config.hook.pytest_ledgerdrill_scenario_concluded(item=item, scenario=scenario)
    return scenario


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = _run(config)
    if run is None or not run.report.scenarios:
        return
    path = run.finish()
    terminalreporter.section("ledgerdrill")
    text = plan_text(run.report) if run.dry_run else terminal_table(run.report)
    terminalreporter.write_line(text)
    if path is not None:
        terminalreporter.write_line(f"report: {path}")
    for output in run.outputs:
        terminalreporter.write_line(f"        {output}")
    if run.output_error:
        terminalreporter.write_line(
            f"ledgerdrill: the HTML report, evidence or history could not be written: "
            f"{run.output_error} (report.json is complete)",
            red=True,
        )
    config.hook.pytest_ledgerdrill_run_finished(report=run.report)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = _run(config)
    if run is not None:
        run.finish()
        run.close()
