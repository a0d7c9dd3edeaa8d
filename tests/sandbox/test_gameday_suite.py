"""The main job, end to end in CI: `ledgerdrill gameday` on the running sandbox.

A faster profile of the suite (three scenarios, real faults, real load) must PASS with
its report written; a deliberately tight target must FAIL with the reason; a steady
state broken before injection must be INCONCLUSIVE with nothing injected.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GATE_S = 1.0  # TARGET's probes.steady_state

TARGET = """
name: suite-test
environment: sandbox
platform: {{kind: sandbox, state_dir: "{state}"}}
tiers:
  finance-core: {{rto: {rto}, rpo: 0s}}
  portals: {{rto: 4h, rpo: 1h}}
default_tier: finance-core
probes: {{catalogue: "{catalogue}", interval: 200ms, steady_state: 1s, settle_timeout: {settle}}}
stability: {{samples: 5, duration: 1s}}
scenarios:
  node-crash: {{recovery_timeout: 30s, observe_after_recovery: 1s, params: {{node: erp-b}}}}
  node-freeze: {{recovery_timeout: 30s, observe_after_recovery: 1s, params: {{node: erp-c}}}}
  database-failover: {{recovery_timeout: 60s, observe_after_recovery: 1s}}
  certificate: {{recovery_timeout: 30s, observe_after_recovery: 1s}}
safety:
  allow: {{nodes: ["erp-*", "db-*"], zones: [a, b, c], databases: ["*"], certificates: ["*"]}}
  blast_radius: {{max_nodes: 1, max_zones: 1}}
  runbook_approval_delay: 200ms
"""


def gameday(
    tmp: Path, sandbox: Any, keyword: str, *, rto: str = "5m", catalogue: Path | None = None,
    settle: str = "10s",
) -> tuple[int, str, dict[str, Any] | None]:  # fmt: skip
    target = tmp / "target.yaml"
    target.write_text(TARGET.format(
        state=sandbox.state_dir, rto=rto, settle=settle,
        catalogue=catalogue or REPO / "probes" / "sandbox.yaml",
    ))  # fmt: skip
    reports = tmp / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "gameday", "--target", str(target),
         "--scenarios", str(REPO / "scenarios"), "--reports-dir", str(reports), "-k", keyword],
        cwd=tmp, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    found = sorted(reports.glob("*/report.json"))
    report = json.loads(found[-1].read_text()) if found else None
    return done.returncode, done.stdout + done.stderr, report


def verdicts(report: dict[str, Any] | None) -> dict[str, str]:
    assert report is not None, "no report.json written"
    return {s["id"]: s["verdict"] for s in report["scenarios"]}


def test_a_fast_suite_passes_on_the_sandbox(tmp_path: Path, sandbox: Any) -> None:
    # one scenario of each kind the sandbox serves here (node, database, certificate);
    # the switchover and the removed certificate run in `make gameday` (make test within
    # 15 minutes: issue 27)
    code, out, report = gameday(
        tmp_path, sandbox, "node_crash or (test_database_failover and crash) or expired"
    )
    # the sandbox's real passwords (ERP, PostgreSQL roles, Redis) are in none of: the
    # terminal, the reports, timelines, evidence, Locust's logs, the sandbox's own logs
    secrets = sandbox_secrets(sandbox.state_dir)
    assert len(secrets) >= 4, "the sandbox's secret files were not found"
    assert not [s for s in secrets if s in out], "a sandbox secret was printed"
    written = [*tmp_path.rglob("*"), *sandbox.state_dir.glob("**/*.log")]
    for path in (p for p in written if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not [s for s in secrets if s in text], f"a sandbox secret is in {path}"
    found = verdicts(report)
    assert found == {
        "node-crash": "PASS",
        "database-failover[crash]": "PASS",
        "certificate[expired]": "PASS",
    }, out[-3000:]
    assert code == 0, out[-3000:]
    assert report is not None
    for scenario in report["scenarios"]:
        measured = scenario["measured"]
        assert measured["rto_s"] is not None and measured["writes_attempted"] > 0
        assert measured["lost_writes"] == 0 and measured["duplicate_writes"] == 0
        # both RPO witnesses in the report; a synchronous failover: both say 0 (issue 32)
        assert measured["rpo_canary_s"] == 0 and measured["rpo_source"] == "canary"
        if scenario["id"] == "database-failover[crash]":
            assert measured["rpo_database_s"] == 0, measured["rpo_database_detail"]
            assert "had every commit" in measured["rpo_database_detail"] or (
                "never acknowledged" in measured["rpo_database_detail"]
            )
        else:  # no promotion: no database figure, and the report says why
            assert measured["rpo_database_s"] is None
            assert "no promotion" in measured["rpo_database_detail"]
        # load ran and its phases add up to Locust's own total
        load = scenario["load"]
        assert load is not None and load["summary"]["requests"] > 0, scenario["id"]
        phases = sum(p["requests"] for p in load["summary"]["phases"])
        assert phases == load["summary"]["requests"]
        # the load followed the drill: its post-recovery phase began after the recovery,
        # and month-end-close's last postings (a post-recovery stage) ran in it
        began = [e["name"] for e in scenario["events"] if e["kind"] == "load.phase"]
        assert began == ["fault", "recovery", "post-recovery"], (scenario["id"], began)
        if not scenario["id"].startswith("certificate"):  # steady: no post-recovery stage
            post = next(p for p in load["summary"]["phases"] if p["phase"] == "post-recovery")
            assert post["requests"] > 0, scenario["id"]
        # what users lived through, from every request they made: measured, and no
        # figure given as a number where it could not be measured
        users = measured["users"]
        assert users is not None and users["requests"] > 0, scenario["id"]
        assert users["longest_stall_s"] is not None and users["longest_wait_s"] is not None
        for name, why in users["absent"].items():
            assert users[name] is None and why, (scenario["id"], name)
        if users["recovered"]:
            assert users["rto_s"] is not None and users["rto_error_s"] is not None
    assert "PASS" in out and "report:" in out
    # one canary for the whole run (issue 32): every scenario checks every acknowledged
    # write since the run began, so a loss reaching back before its own gate is seen
    history = [s["measured"]["canary_history_s"] for s in report["scenarios"]]
    assert history[0] is not None and history[0] > GATE_S, history
    # a scenario here takes well over 5 s, and each later one reaches back past it
    assert all(b - a > 5 for a, b in itertools.pairwise(history)), history


def sandbox_secrets(state_dir: Path) -> list[str]:
    """Every password the sandbox made, from the 0600 files that are meant to hold them."""
    status = json.loads((state_dir / "status.json").read_text())
    found = [str(status[k]) for k in ("password", "admin_password") if status.get(k)]
    for path in state_dir.glob("**/secrets.json"):
        found += [str(v) for v in json.loads(path.read_text()).values() if v]
    found += [p.read_text().strip() for p in state_dir.glob("**/secret") if p.is_file()]
    return [s for s in found if len(s) >= 8]


def test_a_tight_target_fails_with_the_reason(tmp_path: Path, sandbox: Any) -> None:
    code, out, report = gameday(tmp_path, sandbox, "node_freeze", rto="10ms")
    assert verdicts(report) == {"node-freeze": "FAIL"}, out[-3000:]
    assert code != 0
    assert report is not None
    reasons = " ".join(report["scenarios"][0]["reasons"])
    assert "target 10ms" in reasons or "> target" in reasons, reasons


def test_a_broken_steady_state_is_inconclusive_and_injects_nothing(
    tmp_path: Path, sandbox: Any
) -> None:
    catalogue = tmp_path / "broken.yaml"
    catalogue.write_text(
        "probes:\n  - {name: gone, kind: http, url: 'http://127.0.0.1:9/web/health'}\n"
    )
    before = sandbox.platform.node_state("erp-b")
    # a refused port never settles: the gate's 10 s of patience would be spent for nothing
    _, out, report = gameday(tmp_path, sandbox, "node_crash", catalogue=catalogue, settle="2s")
    assert verdicts(report) == {"node-crash": "INCONCLUSIVE"}, out[-3000:]
    assert "steady-state gate failed" in out
    assert report is not None
    assert not [e for e in report["scenarios"][0]["events"] if e["kind"] == "fault.injected"]
    assert sandbox.platform.node_state("erp-b") == before
