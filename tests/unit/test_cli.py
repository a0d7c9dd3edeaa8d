"""The CLI: help, plan, clear errors with exit code 2 and no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledgerdrill.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", [[], ["plan"], ["gameday"], ["cleanup"], ["report"]])
def test_help(command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0
    assert "usage: ledgerdrill" in done.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("tiers:", "tires:"), "tires: unknown field (did you mean 'tiers'?"),
        (("rto: 5m", "rto: 5 minutes"), "tiers.finance-core.rto: '5 minutes' is not a duration"),
        (("default_tier: finance-core", "default_tier: gold"), "default_tier: unknown tier 'gold'"),
    ],
)
def test_bad_target_is_one_line_exit_2(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "targets" / "sandbox.yaml").read_text().replace(*edit, 1))
    done = run("plan", "--target", str(bad))
    assert done.returncode == 2
    assert expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_report_on_nothing_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--reports-dir", str(tmp_path)]) == 2
    assert "no runs with a report.json yet" in capsys.readouterr().err


def test_plan_on_fake_target(tmp_path: Path, fake_target) -> None:  # type: ignore[no-untyped-def]
    fake_target()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_node.py").write_text(
        "from ledgerdrill.faults import NodeCrash\n"
        "def test_node_crash(drill, platform):\n"
        "    drill.steady_state()\n"
        "    with drill.inject(NodeCrash(platform, node=drill.param('node'))):\n"
        "        drill.wait_for_recovery()\n"
    )
    done = run("plan", "--target", "target.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would crash node node-b (kill everything on it) → node node-b (zone b)" in done.stdout
    assert (
        not (tmp_path / "state.json").exists()
        or "stopped" not in (tmp_path / "state.json").read_text()
    )


# the CLI with its drill replaced by a long wait: what matters is who hears the signal
_SLOW_RUN = """
import signal, sys, time
from ledgerdrill import cli
def slow(args, dry_run):
    print("running", flush=True)
    time.sleep(30)
    return 0
cli._run_pytest = slow
sys.exit(cli.main(["gameday"]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_background_run_stops_on_a_signal_from_its_first_moments(sig: signal.Signals) -> None:
    """Started as a shell's background job (SIGINT inherited ignored), the CLI hears
    SIGINT and SIGTERM from its own first line -- before preflight, sandbox start or
    pytest -- and stops with 130. (The interrupt trials found every SIGINT sent in a
    run's first seconds lost: the drill went on and exited 0.)"""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert time.monotonic() - started < 10  # not after the 30 s "run"
