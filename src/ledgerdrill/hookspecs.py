"""ledgerdrill's own pytest hooks (registered with ``pytest_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ledgerdrill.drill import Drill
    from ledgerdrill.report.model import RunReport, ScenarioReport

hookspec = pytest.hookspec


@hookspec
def pytest_ledgerdrill_scenario_concluded(item: pytest.Item, scenario: ScenarioReport) -> None:
    """A scenario was measured and judged; ``scenario`` is what report.json will hold."""


@hookspec(firstresult=True)
def pytest_ledgerdrill_approve_runbook_step(drill: Drill, step: str) -> bool | None:
    """Approve a runbook step (promote DR, restore). Return True once approved; the
    first implementation that returns non-None decides. Its wait counts in the RTO."""


@hookspec
def pytest_ledgerdrill_run_finished(report: RunReport) -> None:
    """The run's report.json was written."""
