"""The dry-run plan is what the run then does: the shipped scenarios, planned and then run
on the same fake platform, list the same actions -- faults, what each touches, runbook
steps -- in the same order, in plan.json, in report.json's ``actions`` and (for faults)
in the journal the run kept in its evidence bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = [
    "node-crash", "node-freeze", "zone-outage", "database-failover[crash]",
    "database-failover[switchover]", "cache-loss", "certificate[expired]",
]  # fmt: skip
# the certificate scenario waits for a detection the fake's probe cannot make: up to the
# target's detection_timeout (30 s by default; 2 s here)
KEYWORD = (
    "node_crash or node_freeze or zone_outage or database_failover or cache_loss "
    "or (certificate and expired)"
)
TARGET = """
name: fake-lab
platform: {kind: fake, state_file: state.json, heal_after: 300ms}
tiers:
  finance-core: {rto: 5m, rpo: 0s}
  integrations: {rto: 30m, rpo: 5m}
  portals: {rto: 4h, rpo: 1h}
probes: {interval: 100ms, steady_state: 300ms, detection_timeout: 2s}
stability: {samples: 3, duration: 300ms}
scenarios:
  node-crash: {params: {node: node-b}}
  node-freeze: {params: {node: node-c}}
safety:
  allow: {nodes: ['*'], zones: ['*'], regions: ['*'], databases: ['*'], certificates: ['*'],
          caches: ['*'], releases: ['*']}
  blast_radius: {max_nodes: 3, max_zones: 1, max_regions: 1, max_node_share: 1}
  runbook_approval_delay: 100ms
"""


def write_target(folder: Path) -> Path:
    lines = [TARGET.rstrip()]
    # no Locust against the fake (it has no ERP): every scenario says so explicitly
    settings = "{load_profile: none, recovery_timeout: 5s, observe_after_recovery: 0s"
    text = "\n".join(lines)
    for scenario in SCENARIOS:
        if f"  {scenario}: {{params:" in text:
            text = text.replace(f"  {scenario}: {{", f"  {scenario}: {settings}, ")
        else:
            text = text.replace("safety:\n", f"  {scenario}: {settings}}}\nsafety:\n")
    path = folder / "target.yaml"
    path.write_text(text + "\n")
    return path


def cli(folder: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", command, "--target", "target.yaml",
         "--scenarios", str(REPO / "scenarios"), "--reports-dir", "reports", "-k", KEYWORD],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def actions(items: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(a["fault"], a["description"], tuple(a["targets"])) for a in items]


def test_the_plan_lists_what_the_run_then_does(tmp_path: Path) -> None:
    write_target(tmp_path)
    plan = cli(tmp_path, "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    [plan_file] = (tmp_path / "reports").glob("*/plan.json")
    planned = {s["id"]: s for s in json.loads(plan_file.read_text())["scenarios"]}
    assert sorted(planned) == sorted(SCENARIOS)
    assert all(s["verdict"] == "PLANNED" for s in planned.values())

    run = cli(tmp_path, "gameday")
    assert run.returncode == 0, run.stdout + run.stderr
    [report_file] = (tmp_path / "reports").glob("*/report.json")
    report = json.loads(report_file.read_text())
    done = {s["id"]: s for s in report["scenarios"]}
    assert sorted(done) == sorted(SCENARIOS)

    for scenario in SCENARIOS:
        plan_actions, run_actions = planned[scenario]["planned"], done[scenario]["actions"]
        assert run_actions, f"{scenario}: the run did nothing"
        fixed = [a for a in plan_actions if not a["chosen_when_run"]]
        if len(fixed) == len(plan_actions):
            assert actions(run_actions) == actions(plan_actions), scenario
            continue
        # a fault chosen by role (the database primary): the plan says so, and the run
        # acted on the role's holder at that moment -- the same kind, the same role
        assert [(a["fault"], a["chosen_when_run"]) for a in run_actions] == [
            (a["fault"], a["chosen_when_run"]) for a in plan_actions
        ], scenario
    # the fake cannot show an expired certificate: the runbook ran after the target's
    # detection_timeout, and the timeline says so
    [missed] = [e for e in done["certificate[expired]"]["events"]
                if e["kind"] == "fault.not-detected"]  # fmt: skip
    assert missed["attributes"]["timeout_s"] == 2.0, missed
    # a failover's revert leaves the new primary in place: the second failover drill
    # acts on it, and the plan had said it would be chosen then
    crash = done["database-failover[crash]"]["actions"][0]
    switch = done["database-failover[switchover]"]["actions"][0]
    assert crash["targets"] != switch["targets"]
    assert "acts on the database primary at that moment" in plan.stdout

    # the journal (kept in the evidence bundle) holds the same faults and runbook steps
    # in the same order: each journaled before it acted, then reverted / done
    journal = json.loads((report_file.parent / "evidence" / "journal.json").read_text())
    intents = [
        ("runbook" if "runbook" in j["record"] else j["record"]["fault"], tuple(j["touches"]))
        for j in journal
        if j["op"] == "intent"
    ]
    performed = [
        (a["fault"], tuple(a["targets"]))
        for s in report["scenarios"]
        for a in s["actions"]
        if a["fault"] != "load"
    ]
    assert intents == performed
    steps = sum(1 for kind, _ in intents if kind == "runbook")
    assert steps >= 1, "the certificate scenario's rotation was not journaled"
    ops = [j["op"] for j in journal]
    assert ops.count("reverted") == len(intents) - steps
    assert ops.count("done") == steps
