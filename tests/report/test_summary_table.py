"""The end-of-run table: every scenario id shown as it is, whatever characters it has."""

from __future__ import annotations

from datetime import UTC, datetime

from ledgerdrill.report.html import render_markdown
from ledgerdrill.report.model import Figures, RunReport, ScenarioReport, UsersModel
from ledgerdrill.report.picture import render_svg
from ledgerdrill.report.scenario import junit_properties
from ledgerdrill.report.summary import markdown_table, terminal_table


def _report(*ids: str) -> RunReport:
    scenarios = [
        ScenarioReport(
            id=i, nodeid=f"scenarios/test_x.py::{i}", fault="certificate-expiry", tier="portals",
            objective=None, measured=Figures(rto_s=1.5, rto_error_s=0.2), verdict="PASS",
            reasons=[],
        )
        for i in ids
    ]
    return RunReport(
        run_id="r1", harness_version="0", target="t", environment="sandbox", platform="fake",
        dry_run=False, started_at=datetime(2026, 12, 1, tzinfo=UTC), scenarios=scenarios,
    )  # fmt: skip


def test_parametrised_ids_are_not_taken_for_markup() -> None:
    ids = ("certificate[expired]", "certificate[removed]", "odd[/]name")
    table = terminal_table(_report(*ids), width=200)
    for scenario_id in ids:
        assert scenario_id in table
    assert all(i in markdown_table(_report(*ids)) for i in ids)


def _with_users(users: UsersModel | None) -> RunReport:
    report = _report("node-freeze")
    report.scenarios[0].measured = Figures(rto_s=2.89, rto_error_s=1.0, recovered=True, users=users)
    return report


def test_the_users_figures_stand_beside_the_probes_everywhere_people_read() -> None:
    users = UsersModel(
        requests=120, recovered=True, rto_s=9.9, rto_error_s=0.2, longest_stall_s=9.0,
        longest_wait_s=9.5, error_rate_during_fault=0.0, requests_lost=2,
        reason="users served again 9.90s after the fault (± 0.20s)", stalls=[(1.0, 10.0)],
    )  # fmt: skip
    report = _with_users(users)
    table = terminal_table(report, width=200)
    assert "RTO probes/users" in table and "2.89s±1.00s / 9.90s" in table
    assert "9.00s" in table  # the stall column
    md = render_markdown(report)
    assert "2.89s ± 1.00s / 9.90s ± 0.20s" in md and "| 9.00s |" in md
    assert "Users' RTO" in md  # the sentence for finance readers
    props = dict(junit_properties(report.scenarios[0]))
    assert props["ledgerdrill.users.longest_stall_s"] == 9.0
    assert props["ledgerdrill.users.requests_lost"] == 2
    assert "ledgerdrill.users" not in props  # flattened, never a dict in a property


def test_a_scenario_without_load_shows_a_dash_not_a_zero() -> None:
    table = terminal_table(_with_users(None), width=200)
    assert "/ — (" in table
    assert not any(k.startswith("ledgerdrill.users") for k, _ in junit_properties(
        _with_users(None).scenarios[0]))  # fmt: skip


def test_the_picture_has_a_users_lane_with_the_stall() -> None:
    users = UsersModel(requests=10, recovered=True, rto_s=9.9, rto_error_s=0.2,
                       longest_stall_s=9.0, requests_lost=0, stalls=[(1.0, 10.0)])  # fmt: skip
    scenario = _with_users(users).scenarios[0]
    ns = 1_000_000_000
    timeline = [
        {"type": "sample", "probe": "erp", "ok": True, "at": {"mono_ns": 0}},
        {"type": "event", "kind": "fault.injected", "name": "x", "at": {"mono_ns": 2 * ns}},
        {"type": "sample", "probe": "erp", "ok": False, "at": {"mono_ns": 3 * ns}},
        {"type": "sample", "probe": "erp", "ok": True, "at": {"mono_ns": 5 * ns}},
        {"type": "event", "kind": "fault.reverting", "name": "x", "at": {"mono_ns": 20 * ns}},
    ]
    svg = render_svg(scenario, timeline)
    assert "users (every request)" in svg
    assert "stall 9.0s" in svg and "RTO 9.90s" in svg  # matplotlib keeps text as comments
