"""The shipped scenario suite plans end to end on a platform offering every capability,
and a dry run touches nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_plan(target: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`ledgerdrill plan` on the shipped scenarios, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "plan", "--target", str(target),
         "--scenarios", str(REPO / "scenarios"), "--reports-dir", str(folder / "reports"),
         *extra],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


SUITE = [
    "zone-outage", "database-failover[crash]", "database-failover[switchover]",
    "database-corruption-and-point-in-time-restore", "certificate[expired]",
    "certificate[removed]", "region-outage", "cache-loss", "bad-release",
    "zone-partition-of-the-database-pair", "slow-link-from-the-erp-to-the-database",
]  # fmt: skip
# the fake has no ERP to put load on: a run would stop at its load profiles, so must a plan
NO_LOAD = "".join(f"  {s}: {{load_profile: none}}\n" for s in SUITE)


def test_whole_suite_plans_on_a_full_fake_platform(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text(
        "name: fake-lab\nplatform: {kind: fake, state_file: state.json}\n"
        "tiers:\n  finance-core: {rto: 5m, rpo: 0s}\n  integrations: {rto: 30m, rpo: 5m}\n"
        "  portals: {rto: 4h, rpo: 1h}\n"
        "scenarios:\n  node-crash: {load_profile: none, params: {node: node-b}}\n"
        "  node-freeze: {load_profile: none, params: {node: node-c}}\n"
        # the fake's database has no DR replica: its links are erp>db-a and db-b>db-a
        "  region-outage-while-the-dr-link-is-cut: {load_profile: none,"
        " params: {link: 'sync-standby>primary'}}\n" + NO_LOAD +
        "safety:\n  allow: {nodes: ['*'], zones: ['*'], regions: ['*'], databases: ['*'],"
        " certificates: ['*'], caches: ['*'], releases: ['*'], links: ['*']}\n"
        "  blast_radius: {max_nodes: 3, max_zones: 1, max_regions: 1, max_node_share: 1}\n"
    )
    done = run_plan(target, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(next((tmp_path / "reports").glob("*/plan.json")).read_text())
    ids = {s["id"]: s for s in plan["scenarios"]}
    assert set(ids) == {
        "node-crash", "node-freeze", "zone-outage", "database-failover[crash]",
        "database-failover[switchover]", "database-corruption-and-point-in-time-restore",
        "certificate[expired]", "certificate[removed]", "region-outage", "cache-loss", "bad-release",
        "zone-partition-of-the-database-pair", "slow-link-from-the-erp-to-the-database",
        "region-outage-while-the-dr-link-is-cut",
    }  # fmt: skip
    assert all(s["verdict"] == "PLANNED" for s in ids.values())
    assert ids["region-outage"]["tier"] == "integrations"
    assert ids["certificate[expired]"]["planned"][1]["fault"] == "runbook"
    assert "would take zone a down" in done.stdout
    state = tmp_path / "state.json"
    assert not state.exists() or json.loads(state.read_text())["log"] == []


def test_a_plan_fails_where_the_run_could_not_start(tmp_path: Path) -> None:
    """Load profiles need the platform's ERP endpoint: a plan on a platform without one
    stops where the run would, instead of promising a run that cannot happen."""
    target = tmp_path / "target.yaml"
    target.write_text(
        "name: fake-lab\nplatform: {kind: fake, state_file: state.json}\n"
        "tiers:\n  finance-core: {rto: 5m, rpo: 0s}\n"
        "scenarios:\n  node-crash: {params: {node: node-b}}\n"
        "safety:\n  allow: {nodes: ['*']}\n"
    )
    done = run_plan(target, tmp_path, "-k", "node_crash")
    assert done.returncode != 0
    assert "load profile month-end-close: the platform gives no entry_url" in done.stdout
    assert "scenarios.node-crash.load_profile: none" in done.stdout


def test_the_sandbox_target_plans_while_the_sandbox_is_down(tmp_path: Path) -> None:
    """`make plan` on a fresh machine: the sandbox is not running, so the database
    primary cannot be read; those scenarios say their target is read when they run
    (the run checks it before it injects) instead of failing the plan."""
    text = (REPO / "targets" / "sandbox.yaml").read_text()
    text = text.replace("../.ledgerdrill/sandbox", str(tmp_path / "sandbox"))
    text = text.replace("../probes/sandbox.yaml", str(REPO / "probes" / "sandbox.yaml"))
    assert str(tmp_path) in text and str(REPO / "probes") in text
    target = tmp_path / "sandbox.yaml"
    target.write_text(text)
    done = run_plan(target, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(next((tmp_path / "reports").glob("*/plan.json")).read_text())
    verdicts = {s["id"]: s["verdict"] for s in plan["scenarios"]}
    assert len(verdicts) == 14 and set(verdicts.values()) == {"PLANNED"}, verdicts
    # the database failovers and corruption act on the primary, the network faults on
    # links named by database roles: read when each runs
    assert done.stdout.count("read when it runs; not now: the sandbox") == 6, done.stdout
    assert "would crash node erp-b" in done.stdout
    assert not (tmp_path / "sandbox" / "status.json").exists()  # nothing was started
