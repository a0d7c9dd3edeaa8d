"""Runbook steps through the plugin: who approves them, what a decline does, and what
the report and the journal keep (the fake platform, driven with pytester)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

TARGET = """
name: fake-lab
environment: sandbox
platform:
  kind: fake
  state_file: state.json
  heal_after: null
  capabilities: [NodeControl, ZoneControl, DatabaseControl]
tiers:
  finance-core: {{rto: 30s, rpo: 0s}}
default_tier: finance-core
probes: {{interval: 100ms, steady_state: 300ms, settle_timeout: 1s}}
stability: {{samples: 3, duration: 300ms}}
safety:
  allow: {{nodes: ["node-*"], databases: ["*"]}}
  runbook_approval_delay: 0s
  baseline_timeout: 1s
  {approval}
"""

SCENARIO = """
import pytest
from ledgerdrill.faults import DatabaseCorruption

@pytest.mark.requires("DatabaseControl")
def test_database_corruption(drill, platform):
    drill.steady_state()
    fault = DatabaseCorruption(platform, "DELETE FROM ledger", "every ledger row deleted")
    with drill.inject(fault):
        drill.runbook(fault.recovery())
"""


def scenario_report(folder: Path) -> dict[str, Any]:
    (found,) = list((folder / "reports").glob("*/report.json"))
    report: dict[str, Any] = json.loads(found.read_text())
    scenario: dict[str, Any] = report["scenarios"][0]
    return scenario


def fake_database(folder: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((folder / "state.json").read_text())
    database: dict[str, Any] = state["database"]
    return database


def setup(pytester: pytest.Pytester, approval: str = "") -> None:
    (pytester.path / "target.yaml").write_text(TARGET.format(approval=approval))
    pytester.makepyfile(test_scenario=SCENARIO)


def test_an_approved_step_runs_once_and_the_platform_is_read_back(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(pytester, "runbook_approval: {by: environment}")
    monkeypatch.setenv("LEDGERDRILL_RUNBOOK_APPROVE", "point-in-time-restore")
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    scenario = scenario_report(pytester.path)
    # the fake has no canary: RPO is not measured, so the verdict cannot be PASS
    assert not [c for c in scenario["checks"] if c["passed"] is False], scenario["checks"]
    kinds = [e["kind"] for e in scenario["events"]]
    for kind in ("runbook.approval-requested", "runbook.approved", "runbook.started",
                 "runbook.stage", "runbook.done", "platform.restored"):  # fmt: skip
        assert kind in kinds, kinds
    approved = next(e for e in scenario["events"] if e["kind"] == "runbook.approved")
    assert approved["attributes"]["by"] == "environment LEDGERDRILL_RUNBOOK_APPROVE"
    assert scenario["measured"]["decision_time_s"] is not None
    assert scenario["measured"]["runbook_time_s"] is not None
    checks = {c["name"]: c for c in scenario["checks"]}
    assert checks["platform-restored"]["passed"] is True
    # a second witness, the fake's own state: one restore, adopted back into HA
    database = fake_database(pytester.path)
    assert database["restores"] == 1 and database["rows"] == 100
    assert not [n for n, m in database["members"].items() if m["role"] == "standalone"]


def test_a_hook_that_declines_calls_the_drill_off_and_reverts(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester)
    pytester.makeconftest(
        """
def pytest_ledgerdrill_approve_runbook_step(drill, step, action):
    assert action.kind == "point-in-time-restore" and action.changes()
    return False
"""
    )
    result = pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    scenario = scenario_report(pytester.path)
    assert scenario["verdict"] == "INCONCLUSIVE", result.stdout.str()
    checks = {c["name"]: c for c in scenario["checks"]}
    assert "declined by a pytest_ledgerdrill_approve_runbook_step hook" in checks["runbook"]["text"]
    assert checks["platform-restored"]["passed"] is True
    kinds = [e["kind"] for e in scenario["events"]]
    assert "runbook.declined" in kinds and "runbook.started" not in kinds
    # the fault was still reverted (its own revert restores): the ledger is whole
    assert fake_database(pytester.path)["rows"] == 100


def test_the_environment_declines_a_step_it_does_not_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(pytester, "runbook_approval: {by: environment}")
    monkeypatch.delenv("LEDGERDRILL_RUNBOOK_APPROVE", raising=False)
    monkeypatch.delenv("LEDGERDRILL_RUNBOOK_REJECT", raising=False)
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    scenario = scenario_report(pytester.path)
    assert scenario["verdict"] == "INCONCLUSIVE"
    declined = next(e for e in scenario["events"] if e["kind"] == "runbook.declined")
    assert "neither LEDGERDRILL_RUNBOOK_APPROVE" in declined["attributes"]["reason"]


def test_the_plan_lists_the_step_with_its_changes_and_approver(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester, "runbook_approval: {by: environment}")
    result = pytester.runpytest("--target=target.yaml", "--dry-run", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*restore the database to the instant before the bad change*",
        "*point the ERP's database connection at the restored server*",
        "*approved by: the environment (LEDGERDRILL_RUNBOOK_APPROVE*",
        "*if interrupted: finished by cleanup: a restore already made is reused*",
    ])  # fmt: skip
    if (pytester.path / "state.json").exists():  # the plan read the fake, never restored
        assert fake_database(pytester.path).get("restores", 0) == 0


def test_an_approvals_file_written_beside_the_target_approves_the_step(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester, "runbook_approval: {by: file, file: approvals.yaml, timeout: 5s}")
    (pytester.path / "approvals.yaml").write_text("approve: [point-in-time-restore]\n")
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    scenario = scenario_report(pytester.path)
    approved = next(e for e in scenario["events"] if e["kind"] == "runbook.approved")
    assert approved["attributes"]["by"].endswith("approvals.yaml")
    assert fake_database(pytester.path)["restores"] == 1


def test_an_approvals_file_that_rejects_calls_the_drill_off(pytester: pytest.Pytester) -> None:
    setup(pytester, "runbook_approval: {by: file, file: approvals.yaml, timeout: 5s}")
    (pytester.path / "approvals.yaml").write_text("reject: [point-in-time-restore]\n")
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    scenario = scenario_report(pytester.path)
    assert scenario["verdict"] == "INCONCLUSIVE"
    kinds = [e["kind"] for e in scenario["events"]]
    assert "runbook.declined" in kinds and "runbook.started" not in kinds
    # the corruption's own revert is a restore: one, made on the way out, not two
    database = fake_database(pytester.path)
    assert database["restores"] == 1 and database["rows"] == 100


def test_a_hook_that_approves_runs_the_step_and_says_who_approved(
    pytester: pytest.Pytester,
) -> None:
    # the target's fallback would decline (environment names nothing): the hook decides
    setup(pytester, "runbook_approval: {by: environment}")
    pytester.makeconftest(
        """
def pytest_ledgerdrill_approve_runbook_step(drill, step, action):
    return action.kind == "point-in-time-restore"
"""
    )
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    scenario = scenario_report(pytester.path)
    approved = next(e for e in scenario["events"] if e["kind"] == "runbook.approved")
    assert approved["attributes"]["by"] == "a pytest_ledgerdrill_approve_runbook_step hook"
    assert "runbook.done" in [e["kind"] for e in scenario["events"]]
    assert fake_database(pytester.path)["restores"] == 1
