"""ledgerdrill's own pytest hooks (registered with ``pytest_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ledgerdrill.drill import Drill
    from ledgerdrill.report.model import RunReport, ScenarioReport
    from ledgerdrill.runbook.base import RunbookAction

hookspec = pytest.hookspec


@hookspec
def pytest_ledgerdrill_scenario_concluded(item: pytest.Item, scenario: ScenarioReport) -> None:
    """A scenario was measured and judged; ``scenario`` is what report.json will hold."""


@hookspec(firstresult=True)
def pytest_ledgerdrill_approve_runbook_step(
    drill: Drill, step: str, action: RunbookAction
) -> bool | None:
    """Approve (True) or decline (False) a runbook step before it runs; None passes the
    question on (to the target's ``safety.runbook_approval``). ``step`` is what it does,
    ``action.changes()`` what it would change, ``action.kind`` its kind. The first
    implementation that answers decides; the wait is timed as the step's decision
    time, apart from the platform's recovery."""


@hookspec
def pytest_ledgerdrill_run_finished(report: RunReport) -> None:
    """The run's report.json was written."""
