"""The end-of-run table: every scenario id shown as it is, whatever characters it has."""

from __future__ import annotations

from datetime import UTC, datetime

from ledgerdrill.report.model import Figures, RunReport, ScenarioReport
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
