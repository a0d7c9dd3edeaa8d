"""``Injection``: safety check -> journal -> inject -> verify -> always revert.

    with Injection(fault, journal=..., guard=..., timeline=...) as injection:
        ...  # observe; injection.t_inject is when the fault began to take effect

The revert runs on a normal exit, on an exception, on SIGINT and on SIGTERM
(see ``signals``), with those signals deferred while it runs. A revert failure is
never swallowed: the journal keeps the entry as ``revert-failed`` and a
``RevertError`` is raised (chained to whatever else was going wrong).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ledgerdrill.errors import FaultError, RevertError
from ledgerdrill.faults.base import Evidence, Fault
from ledgerdrill.safety.guard import SafetyGuard
from ledgerdrill.safety.journal import FaultJournal
from ledgerdrill.safety.signals import deferred_signals
from ledgerdrill.timeline import Instant, Timeline


class Injection:
    def __init__(
        self,
        fault: Fault,
        *,
        journal: FaultJournal,
        guard: SafetyGuard,
        timeline: Timeline,
        target_file: Path | None = None,
        on_journaled: Callable[[Injection], None] | None = None,
    ) -> None:
        self.fault = fault
        # told once the fault is journaled (about to be injected): the drill's action log
        self.on_journaled = on_journaled
        self.touches: list[str] = []
        self.description = ""
        self.journal = journal
        self.guard = guard
        self.timeline = timeline
        self.target_file = target_file
        self.entry_id: str | None = None
        self.t_inject: Instant | None = None
        self.evidence: Evidence | None = None
        self.reverted = False
        # when the scenario left the ``with`` block: observation of the fault ends there
        # (the teardown's revert -- a fail-back, the old certificate put back -- is not the
        # fault's recovery). A revert called inside the block is a runbook step: observed.
        self.t_teardown: Instant | None = None

    def __enter__(self) -> Injection:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.t_teardown is None:
            self.t_teardown = self.timeline.clock.now()
        self.revert()

    def start(self) -> None:
        fault = self.fault
        self.guard.check(fault)  # SafetyViolation: nothing touched, nothing journaled
        # what the plan showed for this fault, resolved once, before anything changes
        self.touches = [str(t) for t in fault.targets()]
        self.description = fault.describe()
        overridden = [w.name for w in self.guard.blackouts()[1]]
        fault.prepare()
        self.entry_id = self.journal.intent(
            fault.undo_record(),
            target=self.guard.target.name,
            target_file=self.target_file,
            platform=fault.platform.kind,
            touches=self.touches,
            overrides=overridden,
        )
        if self.on_journaled is not None:
            self.on_journaled(self)
        try:
            # the fault takes effect with its first action (a zone outage kills node after
            # node; a SIGKILL acts at once, the wait for the processes to go comes after):
            # RTO counts from the start of inject(), never from its end
            began = self.timeline.clock.now()
            with deferred_signals():  # an inject half-done is the hardest thing to undo
                fault.inject()
            self.t_inject = began
            self.journal.mark(self.entry_id, "injected")
            self.timeline.event(
                "fault.injected", fault.kind, at=began, fault=fault.describe(),
                inject_took_s=round(self.timeline.clock.now().seconds_since(began), 3),
            )  # fmt: skip
            self.evidence = fault.verify()
            self.timeline.event("fault.verified", fault.kind, evidence=self.evidence.summary)
        except BaseException as exc:
            self.timeline.event("fault.inject-failed", fault.kind, error=str(exc))
            self.revert()
            if isinstance(exc, Exception) and not isinstance(exc, FaultError):
                raise FaultError(f"injecting {fault.describe()} failed: {exc}") from exc
            raise

    def revert(self) -> None:
        """Undo the fault (idempotent). Raises ``RevertError`` loudly on failure."""
        if self.reverted or self.entry_id is None:
            return
        with deferred_signals():
            self.timeline.event("fault.reverting", self.fault.kind)
            try:
                self.fault.revert()
            except Exception as exc:
                self.journal.mark(self.entry_id, "revert-failed", error=str(exc))
                self.timeline.event("fault.revert-failed", self.fault.kind, error=str(exc))
                raise RevertError(
                    f"REVERT FAILED for {self.fault.describe()}: {exc}. The fault may still be "
                    f"in effect; run `ledgerdrill cleanup` and check the platform by hand."
                ) from exc
            self.reverted = True
            self.journal.mark(self.entry_id, "reverted")
            self.timeline.event("fault.reverted", self.fault.kind)
