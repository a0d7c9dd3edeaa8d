"""Runbook steps as declared actions, like faults: what people do to recover.

A DR failover, a point-in-time restore with the switch of the ERP, a certificate
rotation, a rollback: each is a ``RunbookAction``. A scenario asks the drill to run it
(``drill.runbook(RegionFailover(platform, region="dr"))``) and never checks whether the
run is a dry run: the plan lists the step with what it would change, a real run asks
for approval, journals the step before it acts and each stage as it completes, runs
it, verifies it from outside and journals it done.

A step's life: ``prepare()`` reads what it needs (touching nothing) -> approval ->
journal intent -> ``run()``, whose stages (``stage(name, fn)``) are journaled as they
complete -> ``verify()`` -> journal ``done``. After a SIGKILL, ``ledgerdrill cleanup``
rebuilds the step from its record with the stages already done and calls
``finish_after_interrupt()``: it finishes a half-done step (a stage journaled done is
never repeated: no second restore) or says why there is nothing to finish (the fault's
revert undoes it).

A step may be a fault's recovery (``Fault.recovery()``: the restore after a bad change,
the rollback after a bad release): once it completes, the fault counts as reverted,
and ``cleanup`` finishes the step instead of reverting the fault a second way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ledgerdrill.faults.base import Evidence, JSONParams, TargetRef
from ledgerdrill.kinds import KindRegistry
from ledgerdrill.platforms.base import Platform

if TYPE_CHECKING:
    from ledgerdrill.faults.base import Fault
    from ledgerdrill.timeline import Timeline

StageRecorder = Callable[[str, JSONParams], None]


class RunbookAction(ABC):
    kind: ClassVar[str]
    # the capability protocol this step needs; the scenario skips when it is missing
    capability: ClassVar[type]
    # what ``ledgerdrill cleanup`` does with this step when a killed run left it
    # unfinished: shown in the plan, so an operator knows before approving
    after_interrupt: ClassVar[str]

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        # stages completed, with what each produced (journaled as they complete)
        self.stages: dict[str, JSONParams] = {}
        self.recorder: StageRecorder | None = None
        # the fault this step recovers from (its completion reverts the fault)
        self.resolves: Fault | None = None

    @abstractmethod
    def describe(self) -> str:
        """One line for people: what the step does."""

    def changes(self) -> list[str]:
        """What the step would change, one line each, for the plan (reads only)."""
        return [self.describe()]

    @abstractmethod
    def targets(self) -> Sequence[TargetRef]:
        """What it acts on, for the allowlists."""

    @abstractmethod
    def params(self) -> JSONParams:
        """What identifies this step (enough to rebuild it from its journal record)."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Read (never change) what the step needs, before the journal write."""

    def undo_state(self) -> JSONParams:
        return {}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:  # noqa: B027
        """Take back what ``undo_state`` gave, when rebuilt from a journal record."""

    @abstractmethod
    def run(self) -> None:
        """Do the step, in stages (``self.stage``); each stage is idempotent and is
        skipped when it was already done."""

    @abstractmethod
    def verify(self) -> Evidence:
        """Check from outside that the step took effect; ``FaultError`` if not."""

    def finish_after_interrupt(self) -> str:
        """``cleanup``: finish a step a killed run left unfinished (the stages already
        done are skipped). Returns what was done, for the operator."""
        self.run()
        return "finished"

    def after_recovery(self, timeline: Timeline) -> None:  # noqa: B027 - optional hook
        """After the drill's recovery, note what the step's effect looked like to
        clients (an event on the timeline). Real runs only."""

    def stage(self, name: str, action: Callable[[], JSONParams | None]) -> JSONParams:
        """Run one stage unless it is done already; journal it once it completes."""
        if name in self.stages:
            return self.stages[name]
        data = dict(action() or {})
        self.stages[name] = data
        if self.recorder is not None:
            self.recorder(name, data)
        return data

    def record(self) -> JSONParams:
        return {"runbook": self.kind, "params": self.params(), "undo": self.undo_state()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


RUNBOOKS: KindRegistry[RunbookAction] = KindRegistry("runbook", "runbook step")
A = TypeVar("A", bound=type[RunbookAction])


def register_runbook(cls: A) -> A:
    """Class decorator: lets ``cleanup`` rebuild this step from a journal record."""
    return RUNBOOKS.register(cls)


def registered_runbooks() -> list[str]:
    return RUNBOOKS.kinds()


def runbook_from_record(
    platform: Platform,
    record: Mapping[str, Any],
    stages: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunbookAction:
    """Rebuild a step with the stages a killed run journaled as done."""
    action = RUNBOOKS.rebuild(platform, record)
    action.stages = {str(k): dict(v) for k, v in (stages or {}).items()}
    return action
