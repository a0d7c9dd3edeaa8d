"""Reports people read: HTML with timeline pictures, Markdown, history and trends, the
evidence bundle and its tamper checks, redaction, live progress lines.

Two real runs on the fake platform (pytester) give the report.json and timelines.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.cli import main
from ledgerdrill.report.evidence import redact
from ledgerdrill.report.history import read_history, regressions
from ledgerdrill.report.live import LiveProgress
from ledgerdrill.timeline import SystemClock, Timeline

pytest_plugins = ["pytester"]

SCENARIO = """
import pytest
from ledgerdrill.faults import NodeCrash

@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        drill.wait_for_recovery()
"""
SECRET = "Sup3r-s3cret-pw"


def game_day(pytester: pytest.Pytester, fake_target: Any, runs: int = 2) -> Path:
    target = fake_target()
    # plant secrets where a careless writer would copy them into the evidence
    text = target.read_text() + (
        f"description: 'db postgresql://erp:{SECRET}@db.example:5432/ledger "
        f"host=db password={SECRET}'\n"
    )
    (pytester.path / "target.yaml").write_text(text)
    pytester.makepyfile(test_scenario=SCENARIO)
    for _ in range(runs):
        result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
        # INCONCLUSIVE (the fake has no canary for its RPO 0 target) still reports fully
        result.assert_outcomes(skipped=1)
    return pytester.path / "reports"


@pytest.fixture
def reports(pytester: pytest.Pytester, fake_target: Any) -> Path:
    return game_day(pytester, fake_target)


def runs_of(reports: Path) -> list[Path]:
    return sorted(p for p in reports.iterdir() if (p / "report.json").exists())


def test_html_is_self_contained_with_a_picture_and_the_tier_table(reports: Path) -> None:
    html = (runs_of(reports)[-1] / "report.html").read_text()
    assert "<svg" in html and "Per tier" in html and "finance-core" in html
    # opens offline: nothing fetched (namespace URIs inside SVG are not fetched)
    assert not re.search(r"""(src|href)=["']https?:""", html)
    assert "<script" not in html and "<link" not in html and "url(http" not in html
    assert "@media print" in html


def test_markdown_summary_for_ci(reports: Path) -> None:
    md = (runs_of(reports)[-1] / "summary.md").read_text()
    assert (
        "| scenario | tier | RTO probes / users (target)" in md
        and "| node-crash |" in md
        and "INCONCLUSIVE" in md
    )


def test_history_and_trend_flag_regressions(reports: Path, capsys: Any) -> None:
    runs = read_history(reports)
    assert [r["run_id"] for r in runs] == [p.name for p in runs_of(reports)]
    steady = [{"run_id": str(i), "finished_at": "2026-11-01T00:00:00+00:00",
               "scenarios": {"zone-outage": {"rto_s": 10.0 + i % 2, "rpo_s": 0.0}}}
              for i in range(6)]  # fmt: skip
    assert regressions(steady) == []
    worse = [*steady, {"run_id": "6", "finished_at": "2026-11-02T00:00:00+00:00",
                       "scenarios": {"zone-outage": {"rto_s": 31.0, "rpo_s": 0.0}}}]  # fmt: skip
    [found] = regressions(worse)
    assert found.scenario == "zone-outage" and found.measure == "rto" and found.value == 31.0
    assert main(["report", "trend", "--reports-dir", str(reports)]) == 0
    assert (reports / "trend.png").exists()
    assert "node-crash" in capsys.readouterr().out


def test_evidence_verifies_and_tampering_shows(reports: Path, capsys: Any) -> None:
    first, second = runs_of(reports)
    argv = ["report", "verify", str(second), "--reports-dir", str(reports)]
    assert main(argv) == 0
    assert "intact, chained to " + first.name in capsys.readouterr().out
    manifest = json.loads((second / "evidence" / "manifest.json").read_text())
    assert manifest["previous"] is not None and "report.json" in manifest["files"]
    # one byte changed
    victim = second / "evidence" / "report.json"
    data = bytearray(victim.read_bytes())
    data[10] ^= 1
    victim.write_bytes(bytes(data))
    assert main(argv) == 1
    assert "report.json: changed" in capsys.readouterr().out
    # a file deleted, a file added
    victim.unlink()
    (second / "evidence" / "extra.txt").write_text("added later")
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "report.json: missing" in out and "extra.txt: not in the manifest" in out
    # the earlier run rewritten: the chain breaks
    (first / "evidence" / "manifest.json").write_text("{}")
    assert main(argv) == 1
    assert "chain is broken" in capsys.readouterr().out


def test_planted_secrets_never_reach_the_evidence_or_reports(reports: Path) -> None:
    for file in reports.rglob("*"):
        if file.is_file() and file.suffix in {".json", ".jsonl", ".html", ".md"}:
            assert SECRET not in file.read_text(errors="replace"), file


def test_redact_by_key_url_and_dsn() -> None:
    clean = redact({"password": "x", "nested": [{"api_token": "y"}],
                    "url": "redis://:pw@127.0.0.1:6379/0", "dsn": "host=a password=pw"})  # fmt: skip
    text = json.dumps(clean)
    assert "pw" not in text.replace("password", "") and '"x"' not in text and '"y"' not in text


def test_live_progress_prints_a_line_per_phase_in_a_log() -> None:
    timeline = Timeline(SystemClock())
    lines: list[str] = []
    done = threading.Event()

    def emit(line: str, in_place: bool) -> None:
        assert not in_place
        lines.append(line)
        if "fault injected" in line:
            done.set()

    progress = LiveProgress("zone-outage", timeline, rto_target_s=300, emit=emit,
                            in_place=False, refresh_s=0.02).start()  # fmt: skip
    timeline.event("steady-state.passed", "zone-outage")
    timeline.event("fault.injected", "zone-outage")
    done.wait(2)
    progress.stop()
    assert any("steady state ok" in line for line in lines) or lines
    assert any("fault injected" in line and "RTO target 5m00s" in line for line in lines)
