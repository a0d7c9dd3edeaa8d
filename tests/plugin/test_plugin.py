"""The pytest plugin, driven with pytester: options, markers, verdicts and reverts."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

SCENARIO = """
import time
import pytest
from ledgerdrill.faults import NodeCrash

@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        {body}
"""


def fake_history(path: Path) -> list[str]:
    # under the fake's own lock: it rewrites the file in place
    with open(path / "state.json", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        text = handle.read()
    state = json.loads(text) if text.strip() else {"log": []}
    return [f"{node}:{status}" for _, node, status in state["log"]]


def make(pytester: pytest.Pytester, fake_target, body: str, **target_kw: str) -> Path:  # type: ignore[no-untyped-def]
    target = fake_target(**target_kw)
    (pytester.path / "target.yaml").write_text(target.read_text())
    pytester.makepyfile(test_scenario=SCENARIO.format(body=body))
    return pytester.path / "target.yaml"


def test_pass_writes_report_and_junit_properties(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    make(
        pytester,
        fake_target,
        "drill.wait_for_recovery()\n        drill.record_loss(__import__('tests_support').clean_loss(drill))",
    )
    pytester.makepyfile(
        tests_support="""
from ledgerdrill.measure import Write, WriteOutcome, measure_loss
def clean_loss(drill):
    now = drill.timeline.clock.now()
    return measure_loss([Write("r1", WriteOutcome.OK, now, now)], {"r1": 1}, now)
"""
    )
    result = pytester.runpytest(
        "--target=target.yaml", "--junitxml=junit.xml", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*node-crash*finance-core*PASS*"])
    reports = list((pytester.path / "reports").glob("*/report.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    scenario = report["scenarios"][0]
    assert report["schema_version"] == 1
    assert scenario["verdict"] == "PASS"
    assert 0.3 < scenario["measured"]["rto_s"] < 2.0  # heals after 500ms
    assert scenario["measured"]["lost_writes"] == 0
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="ledgerdrill.verdict" value="PASS"' in junit
    assert 'name="ledgerdrill.rto_s"' in junit
    assert fake_history(pytester.path) == ["node-b:stopped", "node-b:running"]


def test_rto_miss_fails_with_reason(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    make(pytester, fake_target, "drill.wait_for_recovery()", heal="1500ms", rto="1s")
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAIL: RTO *> target 1.00s*"])


def test_scenario_that_raises_still_reverts(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    make(pytester, fake_target, "raise RuntimeError('scenario bug')", heal="null")
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert fake_history(pytester.path) == ["node-b:stopped", "node-b:running"]
    assert not list((pytester.path / ".ledgerdrill" / "journal").glob("*.jsonl"))


def test_failed_assertion_still_reverts(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    make(pytester, fake_target, "assert False, 'checked something'", heal="null")
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert fake_history(pytester.path) == ["node-b:stopped", "node-b:running"]


def test_steady_state_failure_is_inconclusive_and_injects_nothing(
    pytester: pytest.Pytester, fake_target
) -> None:  # type: ignore[no-untyped-def]
    make(pytester, fake_target, "pass", heal="null")
    state = pytester.path / "state.json"
    state.write_text(
        json.dumps({"nodes": {"node-a": {"state": "stopped", "since": time.time()}}, "log": []})
    )
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*INCONCLUSIVE: steady-state gate failed*node-a*still after waiting*for it to settle*"]
    )
    assert fake_history(pytester.path) == []


def test_the_gate_waits_for_a_platform_still_settling(
    pytester: pytest.Pytester, fake_target
) -> None:  # type: ignore[no-untyped-def]
    """A node an earlier scenario left down comes back 0.5 s later (the fake heals it):
    the gate waits for a healthy window (settle_timeout 1s) instead of giving up at once,
    then the drill runs and the wait is on the timeline."""
    make(pytester, fake_target, "drill.wait_for_recovery()", heal="500ms")
    state = pytester.path / "state.json"
    state.write_text(
        json.dumps({"nodes": {"node-a": {"state": "stopped", "since": time.time()}}, "log": []})
    )
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider", "-rs")
    assert "steady-state gate failed" not in result.stdout.str()
    assert "node-b:stopped" in fake_history(pytester.path)  # the drill went on to inject
    report = json.loads(next((pytester.path / "reports").glob("*/report.json")).read_text())
    passed = [e for e in report["scenarios"][0]["events"] if e["kind"] == "steady-state.passed"]
    assert passed and passed[0]["attributes"]["settled_after_s"] > 0


def test_dry_run_touches_nothing_and_shows_refusals(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    target = make(pytester, fake_target, "drill.wait_for_recovery()")
    result = pytester.runpytest("--target=target.yaml", "--dry-run", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*would crash node node-b*node node-b (zone b)*"])
    assert not (pytester.path / "state.json").exists() or fake_history(pytester.path) == []
    target.write_text(target.read_text().replace('nodes: ["node-*"]', 'nodes: ["node-a"]'))
    result = pytester.runpytest("--target=target.yaml", "--dry-run", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*REFUSED: node node-b (zone b) is not allowed*"])


def test_missing_capability_skips_or_fails_when_required(
    pytester: pytest.Pytester, fake_target
) -> None:  # type: ignore[no-untyped-def]
    make(pytester, fake_target, "pass")
    pytester.makepyfile(
        test_db="""
import pytest
@pytest.mark.requires("DatabaseControl")
def test_db_failover(drill):
    drill.steady_state()
"""
    )
    result = pytester.runpytest(
        "test_db.py", "--target=target.yaml", "-p", "no:cacheprovider", "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*platform 'fake' has no DatabaseControl: not offered by this target*"]
    )
    result = pytester.runpytest(
        "test_db.py", "--target=target.yaml", "--require-platform=fake", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*required platform 'fake': platform 'fake' has no DatabaseControl*"]
    )


def test_no_target_skips_with_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(drill):\n    pass\n")
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no target given: use --target FILE*"])


def test_bad_target_is_a_usage_error(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    target = make(pytester, fake_target, "pass")
    target.write_text(target.read_text().replace("rto: 5s", "rto: soon"))
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tiers.finance-core.rto: 'soon' is not a duration*"])


def test_ini_twin_sets_the_target(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    make(pytester, fake_target, "pass")
    pytester.makeini("[pytest]\nledgerdrill_target = target.yaml\n")
    result = pytester.runpytest("--dry-run", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def _as_a_background_job() -> None:
    """What a shell does for ``cmd &`` (and nohup): the job starts with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("sig", "background"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigint", "sigterm", "sigint-background-job"],
)
def test_signal_during_fault_reverts(
    pytester: pytest.Pytester, fake_target, sig: signal.Signals, background: bool
) -> None:  # type: ignore[no-untyped-def]
    """Interrupted mid-fault, the run reverts and exits non-zero -- also when it was
    started as a background job, which inherits SIGINT ignored (the harness installs its
    own handler; before it did, such a run drilled on through the signal)."""
    make(pytester, fake_target, "time.sleep(60)", heal="null")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--target=target.yaml", "-p", "no:cacheprovider", "-q"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_as_a_background_job if background else None,  # noqa: PLW1509
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (pytester.path / "state.json").exists() and "node-b:stopped" in fake_history(
            pytester.path
        ):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the fault was never injected")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0, out
    assert fake_history(pytester.path) == ["node-b:stopped", "node-b:running"], out
    assert not list((pytester.path / ".ledgerdrill" / "journal").glob("*.jsonl"))


def test_leftover_fault_blocks_the_run_until_cleanup(
    pytester: pytest.Pytester, fake_target
) -> None:  # type: ignore[no-untyped-def]
    """A journal entry from a dead run: the next run refuses, --cleanup-first reverts it."""
    make(pytester, fake_target, "drill.wait_for_recovery()", heal="null")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    journal = pytester.path / ".ledgerdrill" / "journal"
    journal.mkdir(parents=True)
    (journal / "old-run.jsonl").write_text(
        json.dumps({
            "op": "intent", "id": "e1", "run_id": "old-run", "pid": int(dead.stdout), "target": "fake-lab",
            "target_file": str(pytester.path / "target.yaml"), "platform": "fake",
            "record": {"fault": "node-crash", "params": {"node": "node-a"}, "undo": {}},
            "at": "2026-11-24T00:00:00+00:00",
        }) + "\n"
    )  # fmt: skip
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*refused: the fault journal holds 1 fault(s) left by a killed run: node-crash(node=node-a)*ledgerdrill cleanup*"
        ]
    )
    result = pytester.runpytest("--target=target.yaml", "--cleanup-first", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)  # the scenario ran (RPO unmeasured is not the point here)
    assert "node-a:running" in fake_history(pytester.path)
    assert not (journal / "old-run.jsonl").exists()


BROKEN_BEHIND_OUR_BACK = """
import pytest
from ledgerdrill.faults import NodeCrash

@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        drill.wait_for_recovery()
    platform.drain_node("node-c")  # someone else breaks the platform after the revert

def test_the_next_one(drill):
    drill.steady_state()
"""


def test_a_platform_not_back_at_baseline_fails_loudly_and_the_next_scenario_is_refused(
    pytester: pytest.Pytester, fake_target: Any
) -> None:
    """Issue 29: 'reverted' means the platform reads back as before, not that an undo
    was called. A node drained behind the harness's back after the revert: FAIL
    platform-restored naming it, an error at teardown (exit non-zero), and the next
    scenario is not drilled on a platform that is not what the run started with."""
    target = fake_target().read_text().replace(
        "  blast_radius:", "  baseline_timeout: 1s\n  blast_radius:"
    )
    (pytester.path / "target.yaml").write_text(target)
    pytester.makepyfile(test_scenario=BROKEN_BEHIND_OUR_BACK)
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider", "-rA")
    out = result.stdout.str()
    assert result.ret != 0
    assert "FAIL: " in out and "node node-c is drained (was running)" in out
    assert "NOT back to how it was before the drill" in out  # the teardown's RevertError
    assert "not back to its baseline after node-crash, so it is not drilled" in out
    report = json.loads(next((pytester.path / "reports").glob("*/report.json")).read_text())
    verdicts = {s["id"]: s["verdict"] for s in report["scenarios"]}
    assert verdicts == {"node-crash": "FAIL", "the-next-one": "INCONCLUSIVE"}, verdicts
    checks = {c["name"]: c for c in report["scenarios"][0]["checks"]}
    assert checks["platform-restored"]["passed"] is False


MISDECLARED = """
import pytest

@pytest.mark.requires({capability!r})
@pytest.mark.tier({tier!r})
def test_misdeclared(drill):
    drill.steady_state()
"""


@pytest.mark.parametrize(
    "case",
    [
        ("NodeKontrol", "finance-core", True, "requires('NodeKontrol'): unknown capability"),
        ("NodeControl", "no-such-tier", True, "tier 'no-such-tier' is not defined in"),
        ("ZoneOutageControl", "finance-core", False, "ZoneOutageControl"),
    ],
)
def test_a_misdeclared_scenario_is_a_clear_error_and_a_missing_capability_a_skip(  # type: ignore[no-untyped-def]
    pytester: pytest.Pytester, fake_target, case: tuple[str, str, bool, str]
) -> None:
    """RunSession.drill_for assembles the drill; the plugin only translates: what the
    scenario's author got wrong is an error naming the test and what is allowed (no
    traceback), what this platform cannot do skips the scenario with the reason."""
    capability, tier, expect_usage_error, says = case
    (pytester.path / "target.yaml").write_text(fake_target().read_text())
    pytester.makepyfile(test_scenario=MISDECLARED.format(capability=capability, tier=tier))
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider", "-rs")
    text = result.stdout.str() + result.stderr.str()
    if expect_usage_error:
        result.assert_outcomes(errors=1)
        assert "test_scenario.py::test_misdeclared: " + says in text, text
        assert "Traceback" not in text and "plugin.py" not in text, text
        if "capability" in says:
            assert "allowed: NodeControl" in text, text
    else:
        result.assert_outcomes(skipped=1)
        assert says in text, text


PRECONDITION_SCENARIO = """
import pytest
from ledgerdrill.faults import NetworkLatency, NodeCrash

@pytest.mark.requires("NodeControl", "NetworkControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NetworkLatency(platform, "erp>db-a", 5), precondition=True):
        drill.timeline.clock.sleep(1.5)
        with drill.inject(NodeCrash(platform, node=drill.param("node"))):
            drill.wait_for_recovery()
"""


def test_a_precondition_does_not_date_the_fault(pytester: pytest.Pytester, fake_target) -> None:  # type: ignore[no-untyped-def]
    """A fault injected as a precondition (a DR link cut before a regional outage) is
    guarded, journaled and reverted like any, but RTO is measured from the scenario's
    fault: here the crash, 1.5 s after the precondition, healing 0.5 s after it."""
    text = fake_target().read_text()
    text = text.replace("capabilities: [NodeControl, ZoneControl]",
                        "capabilities: [NodeControl, ZoneControl, NetworkControl]")
    text = text.replace('allow: {nodes: ["node-*"]}', 'allow: {nodes: ["node-*"], links: ["*"]}')
    (pytester.path / "target.yaml").write_text(text)
    pytester.makepyfile(test_scenario=PRECONDITION_SCENARIO)
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    report = json.loads(next((pytester.path / "reports").glob("*/report.json")).read_text())
    scenario = report["scenarios"][0]
    # INCONCLUSIVE only for want of a canary here; the RTO is what this is about
    assert scenario["verdict"] == "INCONCLUSIVE" and scenario["fault"] == "node-crash"
    assert 0.3 < scenario["measured"]["rto_s"] < 1.4, scenario["measured"]  # not from the cut
    # both were reverted: the node is back, the link as it was found
    assert fake_history(pytester.path) == ["node-b:stopped", "node-b:running"]
    state = json.loads((pytester.path / "state.json").read_text())
    assert state["links"]["erp>db-a"]["latency_ms"] == 0.0
