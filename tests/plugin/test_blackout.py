"""The business calendar in a run: inside a blackout window a drill is REFUSED before
it touches anything, the plan says so, and an override by name is recorded in the
journal and the report. The calendar's clock is fixed through the plugin's
``CALENDAR_CLOCK_KEY`` (a conftest), never by sleeping or by the real date."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

SCENARIO = """
import pytest
from ledgerdrill.faults import NodeCrash

@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        {body}
"""


def fake_history(path: Path) -> list[str]:
    """What the fake platform did, in order (read under its own lock)."""
    state_file = path / "state.json"
    if not state_file.exists():
        return []
    with open(state_file, encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        text = handle.read()
    state = json.loads(text) if text.strip() else {"log": []}
    return [f"{node}:{status}" for _, node, status in state["log"]]

CALENDAR = """  calendar:
    timezone: Europe/Berlin
    blackouts:
      - {name: month-end-close, reason: financial close,
         month_end: {last_business_days: 2, first_business_days: 1}}
      - {name: audit, from: 2027-01-11, to: 2027-01-15}
"""
CLOCK = """
from datetime import datetime, UTC
import pytest
from ledgerdrill.plugin import CALENDAR_CLOCK_KEY
from ledgerdrill.timeline import FakeClock

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.stash[CALENDAR_CLOCK_KEY] = FakeClock(datetime({when}, tzinfo=UTC))
"""
IN_CLOSE = "2026, 11, 30, 9"  # Monday 30 Nov 2026, 10:00 in Berlin: the close
OUTSIDE = "2026, 11, 16, 9"


def setup_run(pytester: pytest.Pytester, fake_target: Any, when: str) -> Path:
    target = pytester.path / "target.yaml"
    target.write_text(fake_target().read_text() + CALENDAR)
    pytester.makepyfile(test_scenario=SCENARIO.format(body="drill.wait_for_recovery()"))
    pytester.makeconftest(CLOCK.format(when=when))
    return target


def report_of(pytester: pytest.Pytester, name: str = "report.json") -> dict[str, Any]:
    [path] = (pytester.path / "reports").glob(f"*/{name}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_inside_the_close_the_drill_is_refused_before_anything_runs(
    pytester: pytest.Pytester, fake_target: Any
) -> None:
    setup_run(pytester, fake_target, IN_CLOSE)
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*REFUSED by the safety guard: *blackout window month-end-close (financial close) is "
        "in effect until 2026-12-02 00:00 Europe/Berlin*--override-blackout=month-end-close*"
    ])  # fmt: skip
    assert "Traceback" not in result.stdout.str()
    assert fake_history(pytester.path) == []
    [scenario] = report_of(pytester)["scenarios"]
    assert scenario["verdict"] == "REFUSED"
    assert scenario["actions"] == []
    # refused before the steady-state gate: not one probe sample was taken
    timeline = (pytester.path / "reports").glob("*/timelines/*.jsonl")
    lines = [json.loads(x) for f in timeline for x in f.read_text().splitlines()]
    assert not [x for x in lines if x.get("type") == "sample"]


def test_the_plan_shows_the_refusal_and_then_the_override(
    pytester: pytest.Pytester, fake_target: Any
) -> None:
    setup_run(pytester, fake_target, IN_CLOSE)
    result = pytester.runpytest("--target=target.yaml", "--dry-run", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*REFUSED: blackout window month-end-close*2026-12-02 00:00*"])
    result = pytester.runpytest(
        "--target=target.yaml", "--dry-run", "--override-blackout=month-end-close",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*OVERRIDE: blackout window month-end-close is in effect*"])


def test_an_override_by_ini_twin_runs_and_is_recorded(
    pytester: pytest.Pytester, fake_target: Any
) -> None:
    setup_run(pytester, fake_target, IN_CLOSE)
    pytester.makeini("[pytest]\nledgerdrill_override_blackout = month-end-close\n")
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    # INCONCLUSIVE (no canary for the RPO-0 tier on the fake) -- but it did run
    result.assert_outcomes(skipped=1)
    assert fake_history(pytester.path) == ["node-b:stopped", "node-b:running"]
    [scenario] = report_of(pytester)["scenarios"]
    assert [a["overrides"] for a in scenario["actions"]] == [["month-end-close"]]
    overridden = [e for e in scenario["events"] if e["kind"] == "safety.blackout-overridden"]
    assert [e["name"] for e in overridden] == ["month-end-close"]
    [run_dir] = (pytester.path / "reports").glob("*/evidence")
    journal = json.loads((run_dir / "journal.json").read_text())
    assert [j.get("overrides_blackout") for j in journal if j["op"] == "intent"] == [
        ["month-end-close"]
    ]


def test_outside_every_window_nothing_is_said(pytester: pytest.Pytester, fake_target: Any) -> None:
    setup_run(pytester, fake_target, OUTSIDE)
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    [scenario] = report_of(pytester)["scenarios"]
    assert [a["overrides"] for a in scenario["actions"]] == [[]]
    assert "blackout" not in result.stdout.str()


def test_an_override_naming_no_window_is_a_usage_error(
    pytester: pytest.Pytester, fake_target: Any
) -> None:
    setup_run(pytester, fake_target, IN_CLOSE)
    result = pytester.runpytest(
        "--target=target.yaml", "--override-blackout=month-end", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*--override-blackout=month-end: no such window in safety.calendar.blackouts "
        "(defined: month-end-close, audit)*"
    ])  # fmt: skip


def test_cli_plan_and_gameday_inside_a_window(tmp_path: Path, fake_target: Any) -> None:
    """Through the command line, with a window around today (real date: the point here
    is the wiring of --override-blackout, the arithmetic is tested with fixed dates)."""
    today = datetime.now(UTC).date()
    target = fake_target()
    target.write_text(target.read_text() + (
        f"  calendar:\n    timezone: UTC\n    blackouts:\n      - {{name: freeze, "
        f"from: {today - timedelta(days=1)}, to: {today + timedelta(days=1)}}}\n"
    ))  # fmt: skip
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_node.py").write_text(
        SCENARIO.format(body="drill.wait_for_recovery()")
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledgerdrill.cli", *args, "--target", str(target),
             "--scenarios", "scenarios", "--reports-dir", "reports"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    plan = cli("plan")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    until = (today + timedelta(days=2)).isoformat()
    assert f"REFUSED: blackout window freeze is in effect until {until} 00:00 UTC" in plan.stdout
    typo = cli("gameday", "--override-blackout", "frezee")
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1, typo.stderr
    assert "--override-blackout=frezee: no such window" in typo.stderr
    refused = cli("gameday")
    assert refused.returncode == 1
    assert "REFUSED by the safety guard: refused on target fake-lab: blackout window" in (
        refused.stdout
    )
    assert fake_history(tmp_path) == []
    allowed = cli("gameday", "--override-blackout", "freeze")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert fake_history(tmp_path) == ["node-b:stopped", "node-b:running"]
