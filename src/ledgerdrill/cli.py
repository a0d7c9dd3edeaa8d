"""The ``ledgerdrill`` command: plan, gameday, cleanup, report.

A user's mistake (a bad target file, a bad flag) is one clear line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ledgerdrill import __version__
from ledgerdrill.errors import ConfigError, LedgerdrillError, SafetyViolation
from ledgerdrill.report.model import RunReport
from ledgerdrill.report.summary import plan_text, terminal_table
from ledgerdrill.safety import DEFAULT_STATE_DIR, install_termination_handler
from ledgerdrill.safety.calendar import require_windows
from ledgerdrill.targets import load_target

DEFAULT_TARGET = Path("targets/sandbox.yaml")
DEFAULT_SCENARIOS = Path("scenarios")
EXIT_USAGE = 2
EXIT_SAFETY = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledgerdrill",
        description="Chaos drills for finance ERP platforms: inject faults, measure RTO/RPO.",
    )
    parser.add_argument("--version", action="version", version=f"ledgerdrill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def target_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", type=Path, default=DEFAULT_TARGET,
                       help=f"target file (default {DEFAULT_TARGET})")  # fmt: skip
        p.add_argument("--scenarios", type=Path, default=DEFAULT_SCENARIOS,
                       help=f"scenario folder (default {DEFAULT_SCENARIOS})")  # fmt: skip
        p.add_argument(
            "-k", dest="keyword", help="only scenarios matching this pytest -k expression"
        )
        p.add_argument("--reports-dir", type=Path, default=Path("reports"))
        p.add_argument("--confirm-production", metavar="NAME",
                       help="required to drill a production target: its name")  # fmt: skip
        p.add_argument("--override-blackout", metavar="WINDOW", action="append", default=[],
                       help="drill inside this blackout window of the target's business "
                       "calendar (repeatable; recorded in the journal and report)")  # fmt: skip

    plan = sub.add_parser("plan", help="show what a game day would do, touching nothing")
    target_args(plan)

    gameday = sub.add_parser("gameday", help="run the scenario suite against a target")
    target_args(gameday)
    gameday.add_argument("--junitxml", type=Path, help="also write JUnit XML here")
    gameday.add_argument("--interactive", action="store_true",
                         help="pause at each runbook step for approval")  # fmt: skip
    gameday.add_argument("--keep-sandbox", action="store_true",
                         help="leave a sandbox this run started running afterwards")  # fmt: skip
    gameday.add_argument("--probe-interval", metavar="DURATION", help="e.g. 100ms")
    gameday.add_argument("--erp-api", choices=("jsonrpc", "json2"),
                         help="the ERP API to speak (default: the target's erp_api)")  # fmt: skip
    gameday.add_argument("--cleanup-first", action="store_true",
                         help="revert faults a killed run left behind before starting")  # fmt: skip
    gameday.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")

    clean = sub.add_parser("cleanup", help="revert faults a killed run left behind")
    clean.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    clean.add_argument("--force", action="store_true",
                       help="also revert entries of runs whose process still lives")  # fmt: skip

    sandbox = sub.add_parser("sandbox", help="bring the embedded sandbox up, show it, take it down")
    sandbox.add_argument("action", choices=["up", "status", "verify", "down"],
                         help="verify: check it is healthy by SQL and HTTPS, independently "
                         "of the harness (exits 1 naming what is not)")  # fmt: skip
    sandbox.add_argument("--target", type=Path, default=DEFAULT_TARGET,
                         help=f"a sandbox target file (default {DEFAULT_TARGET})")  # fmt: skip
    sandbox.add_argument("--json", action="store_true", help="machine-readable status")

    report = sub.add_parser(
        "report",
        help="a run's summary; `report html RUN`, `report trend`, `report verify RUN`",
        description="ledgerdrill report [RUN] | report html [RUN] | report trend | "
        "report verify [RUN]   (RUN: run id, run folder or report.json; default latest)",
    )
    report.add_argument("words", nargs="*", metavar="[html|trend|verify] [RUN]")
    report.add_argument("--reports-dir", type=Path, default=Path("reports"))
    report.add_argument("--last", type=int, default=5,
                        help="trend: compare with the last N runs' median")  # fmt: skip
    report.add_argument("--tolerance", type=float, default=0.5,
                        help="trend: worse than the median by this fraction")  # fmt: skip
    report.add_argument("--fail-on-regression", action="store_true",
                        help="trend: exit 1 when a regression is found (a CI gate)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # first of all: a run started as a background job inherits SIGINT ignored, and until
    # the plugin installed its handler a Ctrl-C (or `kill -INT`) in the first seconds --
    # preflight, sandbox start, collection -- was lost and the drill went on to inject
    # (found by the interrupt trials: every SIGINT "before-fault" exited 0 after a full run)
    restore_signals = install_termination_handler()
    try:
        return _main(argv)
    finally:
        restore_signals()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in {"plan", "gameday"}:
            return _run_pytest(args, dry_run=args.command == "plan")
        if args.command == "cleanup":
            return _cleanup(args)
        if args.command == "report":
            return _report(args)
        if args.command == "sandbox":
            from ledgerdrill.platforms.sandbox.cli import sandbox_command

            return sandbox_command(args.target, args.action, as_json=args.json)
    except ConfigError as exc:
        print(f"ledgerdrill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SafetyViolation as exc:
        print(f"ledgerdrill: refused: {exc}", file=sys.stderr)
        return EXIT_SAFETY
    except LedgerdrillError as exc:
        print(f"ledgerdrill: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ledgerdrill: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ledgerdrill ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _run_pytest(args: argparse.Namespace, *, dry_run: bool) -> int:
    import pytest

    target = load_target(args.target)  # a bad target file is a clear error before pytest starts
    from ledgerdrill.platforms.registry import preflight

    preflight(target)  # a platform reaching beyond the allowlist is refused before any call
    require_windows(target.safety.calendar, args.override_blackout, str(args.target))
    if not dry_run:
        _check_can_drill(target.name, cleanup_first=args.cleanup_first)
    if not args.scenarios.is_dir():
        raise ConfigError(f"{args.scenarios}: scenario folder not found (use --scenarios DIR)")
    pytest_args = [
        str(args.scenarios),
        f"--target={args.target}",
        f"--reports-dir={args.reports_dir}",
        "-p", "no:cacheprovider",
        # Locust's pytest plugin would import locust (and gevent) lazily; keep it out entirely
        "-p", "no:locust",
        # ledgerdrill is imported before pytest loads it as a plugin: nothing to rewrite
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "-rfEs",
    ]  # fmt: skip
    if dry_run:
        pytest_args += ["--dry-run", "-q"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    if args.confirm_production:
        pytest_args.append(f"--confirm-production={args.confirm_production}")
    pytest_args += [f"--override-blackout={window}" for window in args.override_blackout]
    if not dry_run:
        if args.junitxml:
            pytest_args.append(f"--junitxml={args.junitxml}")
        if args.probe_interval:
            pytest_args.append(f"--probe-interval={args.probe_interval}")
        if args.erp_api:
            pytest_args.append(f"--erp-api={args.erp_api}")
        if args.cleanup_first:
            pytest_args.append("--cleanup-first")
        if args.interactive:
            pytest_args += ["--interactive", "-s"]  # -s: the question must reach the terminal
        pytest_args += list(args.pytest_args)
    from ledgerdrill.platforms.registry import bring_up_for_run

    take_down = None if dry_run else bring_up_for_run(target, say=_say)
    try:
        code = int(pytest.main(pytest_args))
    finally:
        if take_down is not None and not args.keep_sandbox:
            take_down()
    return {4: EXIT_USAGE, 5: 0}.get(code, code) if not dry_run else code


def _say(line: str) -> None:
    print(line, flush=True)


def _check_can_drill(target: str, *, cleanup_first: bool) -> None:
    """Refuse early (exit 3) when another run holds the target or a killed run left a
    fault behind; the plugin checks again for real when the run starts."""
    from ledgerdrill.safety.journal import FaultJournal, refuse_leftovers
    from ledgerdrill.safety.lock import TargetLock

    TargetLock(DEFAULT_STATE_DIR, target, "preflight").acquire().release()
    if not cleanup_first:
        refuse_leftovers(FaultJournal(DEFAULT_STATE_DIR).left_by_killed_runs())


def _cleanup(args: argparse.Namespace) -> int:
    from ledgerdrill.cleanup import cleanup

    results = cleanup(args.state_dir, force=args.force)
    if not results:
        print("nothing to clean up: the fault journal is empty")
        return 0
    reverts = [r for r in results if r.kind == "revert"]
    failed = [r for r in reverts if not r.ok]
    finished = sum(1 for r in reverts if r.ok and r.entry.is_runbook)
    line = f"{len(reverts) - len(failed) - finished} reverted, {len(failed)} not reverted"
    # a runbook step is finished, not reverted: said apart so the count is not inflated
    print(line + (f"; {finished} runbook step(s) finished" if finished else ""))
    not_restored = [r for r in results if r.kind == "baseline" and not r.ok]
    for result in not_restored:
        print(f"ledgerdrill cleanup: {result.entry.target} is {result.message}", file=sys.stderr)
    return 1 if failed or not_restored else 0


def _report(args: argparse.Namespace) -> int:
    words = list(args.words)
    action = words.pop(0) if words and words[0] in {"html", "trend", "verify"} else "summary"
    if len(words) > 1:
        raise ConfigError(f"report {action}: one run at most, got {' '.join(words)}")
    run = words[0] if words else "latest"
    if action == "trend":
        return _trend(args)
    path = _find_report(run, args.reports_dir)
    if action == "verify":
        return _verify(path.parent, args.reports_dir)
    if action == "html":
        from ledgerdrill.report.html import write_outputs

        written = write_outputs(RunReport.read(path), path.parent)
        print("\n".join(str(p) for p in written))
        return 0
    try:
        report = RunReport.read(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable ledgerdrill report ({exc})") from None
    print(plan_text(report) if report.dry_run else terminal_table(report))
    print(f"report: {path}")
    return 1 if any(s.verdict == "FAIL" for s in report.scenarios) else 0


def _trend(args: argparse.Namespace) -> int:
    from ledgerdrill.report.history import read_history, regressions, trend_picture, trend_table

    runs = read_history(args.reports_dir)
    if not runs:
        raise ConfigError(f"{args.reports_dir}: no history yet (a game day appends to it)")
    print(trend_table(runs))
    picture = trend_picture(runs, args.reports_dir / "trend.png")
    found = regressions(runs, last=args.last, tolerance=args.tolerance)
    for regression in found:
        print(f"REGRESSION {regression.text()}")
    if not found:
        print(f"no regression against the median of the last {args.last} runs")
    print(f"picture: {picture}")
    return 1 if found and args.fail_on_regression else 0


def _verify(run_dir: Path, reports_dir: Path) -> int:
    from ledgerdrill.report.evidence import MANIFEST, verify
    from ledgerdrill.report.history import read_history

    runs = [r["run_id"] for r in read_history(reports_dir)]
    previous = None
    if run_dir.name in runs and runs.index(run_dir.name) > 0:
        earlier = runs[runs.index(run_dir.name) - 1]
        previous = reports_dir / earlier / "evidence" / MANIFEST
    problems = verify(run_dir, previous)
    for problem in problems:
        print(f"TAMPERED {problem}")
    if not problems:
        link = f", chained to {previous.parent.parent.name}" if previous else ""
        print(f"evidence of {run_dir.name} intact{link}")
    return 1 if problems else 0


def _find_report(run: str, reports_dir: Path) -> Path:
    candidate = Path(run)
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        folder = candidate
    elif run == "latest":
        runs = sorted(p for p in reports_dir.glob("*/") if (p / "report.json").exists())
        if not runs:
            raise ConfigError(f"{reports_dir}: no runs with a report.json yet")
        folder = runs[-1]
    else:
        folder = reports_dir / run
    for name in ("report.json", "plan.json"):
        if (folder / name).exists():
            return folder / name
    raise ConfigError(f"{folder}: no report.json (give a run id, a run folder or a file)")


if __name__ == "__main__":
    sys.exit(main())
