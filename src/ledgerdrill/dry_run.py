"""What a dry run records in place of an injection: the action, its targets and the
guard's verdict, touching nothing. ``Drill.inject`` returns a ``DryRunInjection`` when
the run is a plan; a real run records the same ``PlannedAction`` shape as it acts, so
that a plan and its run can be compared."""

from __future__ import annotations

from ledgerdrill.errors import FaultError, PlatformError
from ledgerdrill.faults.base import Fault
from ledgerdrill.report.model import PlannedAction
from ledgerdrill.safety import SafetyGuard
from ledgerdrill.timeline import Instant


def planned_problems(guard: SafetyGuard, fault: Fault) -> list[str]:
    """The guard's verdict for the plan. A fault whose targets are chosen by role when
    it runs (the database primary) on a platform that cannot be read now (the sandbox
    is down) is not refused for that: the run resolves and checks its targets before
    it injects. Everything else is checked as the run would."""
    if fault.chosen_when_run:
        try:
            fault.targets()
        except PlatformError:
            return guard.problems_beyond_targets()
        except FaultError as exc:  # the roles it names do not exist here: the run would stop
            return [f"{fault.kind}: {exc}"]
    return guard.problems(fault)


class DryRunInjection:
    """What ``inject`` returns in a dry run: records the action, touches nothing."""

    def __init__(self, fault: Fault, refused: list[str], overrides: list[str]) -> None:
        self.fault = fault
        try:
            targets = [str(t) for t in fault.targets()]
        except PlatformError as exc:  # the platform cannot be read now (it is down)
            targets = [f"(read when it runs; not now: {exc})"]
        except Exception as exc:  # the plan shows it rather than crash
            targets = [f"(cannot resolve targets: {exc})"]
        self.action = PlannedAction(
            fault=fault.kind,
            description=fault.describe(),
            targets=targets,
            refused=refused,
            overrides=overrides,
            chosen_when_run=fault.chosen_when_run,
        )
        self.t_inject: Instant | None = None

    def __enter__(self) -> DryRunInjection:
        return self

    def revert(self) -> None:
        """A dry run applied nothing, so there is nothing to revert."""

    def __exit__(self, *exc: object) -> None:
        return None
