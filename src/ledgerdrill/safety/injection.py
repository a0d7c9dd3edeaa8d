"""``Injection``: safety check -> journal -> inject -> verify -> always revert.

    with Injection(fault, journal=..., guard=..., timeline=...) as injection:
        ...  # observe; injection.t_inject is when the fault began to take effect

The revert runs on a normal exit, on an exception, on SIGINT and on SIGTERM
(see ``signals``), with those signals deferred while it runs. A revert failure is
never swallowed: the journal keeps the entry as ``revert-failed`` and a
``RevertError`` is raised (chained to whatever else was going wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ledgerdrill.errors import FaultError, RevertError
from ledgerdrill.faults.base import Evidence, Fault
from ledgerdrill.safety.bounded import CallTimeout, bounded
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
        on_injected: Callable[[Injection], None] | None = None,
        baseline: Mapping[str, Any] | None = None,
    ) -> None:
        self.fault = fault
        # the platform's shape before the drill, journaled with the fault for cleanup
        self.baseline = baseline
        # told once the fault is journaled (about to be injected): the drill's action log
        self.on_journaled = on_journaled
        self.on_injected = on_injected  # the fault is in effect (t_inject is set)
        self.touches: list[str] = []
        self.description = ""
        # the backstop for a platform call that never returns (backends bound their own)
        self.call_timeout_s = guard.target.safety.fault_call_timeout
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
        # injected before the scenario's fault to set its stage (Drill.inject): not dated
        self.precondition = False

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
        fault, limit = self.fault, self.call_timeout_s

        def look() -> None:  # reads only: the guard, what it touches, what undo needs
            self.guard.check(fault)  # SafetyViolation: nothing touched, nothing journaled
            # what the plan showed for this fault, resolved once, before anything changes
            self.touches = [str(t) for t in fault.targets()]
            self.description = fault.describe()
            fault.prepare()

        bounded(look, limit, f"reading the platform before {fault.kind}")
        overridden = [w.name for w in self.guard.blackouts()[1]]
        undo = fault.undo_record()
        # the undo record on disk and this object holding its id: both or neither (an
        # interrupt between them would leave an entry the revert cannot mark)
        with deferred_signals():
            self.entry_id = self.journal.intent(
                undo,
                target=self.guard.target.name,
                target_file=self.target_file,
                platform=fault.platform.kind,
                touches=self.touches,
                overrides=overridden,
                baseline=self.baseline,
            )
            if self.on_journaled is not None:
                self.on_journaled(self)
        try:
            # the fault takes effect with its first action (a zone outage kills node after
            # node; a SIGKILL acts at once, the wait for the processes to go comes after):
            # RTO counts from the start of inject(), never from its end
            began = self.timeline.clock.now()
            with deferred_signals():  # an inject half-done is the hardest thing to undo
                bounded(fault.inject, limit, f"inject of {self.description}")
            self.t_inject = began
            self.journal.mark(self.entry_id, "injected")
            if self.on_injected is not None:
                self.on_injected(self)
            self.timeline.event(
                "fault.injected", fault.kind, at=began, fault=fault.describe(),
                inject_took_s=round(self.timeline.clock.now().seconds_since(began), 3),
            )  # fmt: skip
            self.evidence = bounded(fault.verify, limit, f"verify of {fault.kind}")
            self.timeline.event("fault.verified", fault.kind, evidence=self.evidence.summary)
        except BaseException as exc:
            self.timeline.event("fault.inject-failed", fault.kind, error=str(exc))
            # an inject that timed out may still complete after the revert: keep the
            # entry pending so that `ledgerdrill cleanup` reverts once more
            late = "the inject timed out and may still take effect" if (
                isinstance(exc, CallTimeout) and self.t_inject is None) else ""  # fmt: skip
            self.revert(still_pending=late)
            if isinstance(exc, Exception) and not isinstance(exc, FaultError):
                raise FaultError(f"injecting {fault.describe()} failed: {exc}") from exc
            raise

    def resolved_by(self, step: str) -> None:
        """A runbook step that recovers from this fault completed (a restore, a
        rollback): the fault counts as reverted, and is not reverted a second way."""
        if self.reverted or self.entry_id is None:
            return
        self.reverted = True
        self.journal.mark(self.entry_id, "reverted")
        self.timeline.event("fault.reverted", self.fault.kind, by=f"runbook step {step}")

    def revert(self, *, still_pending: str = "") -> None:
        """Undo the fault (idempotent). Raises ``RevertError`` loudly on failure.
        ``still_pending``: reverted, but the journal keeps the entry for a later cleanup."""
        if self.reverted or self.entry_id is None:
            return
        with deferred_signals():
            self.timeline.event("fault.reverting", self.fault.kind)
            what = self.description or self.fault.kind
            try:
                bounded(self.fault.revert, self.call_timeout_s, f"revert of {what}")
            except Exception as exc:
                self.journal.mark(self.entry_id, "revert-failed", error=str(exc))
                self.timeline.event("fault.revert-failed", self.fault.kind, error=str(exc))
                raise RevertError(
                    f"REVERT FAILED for {what}: {exc}. The fault may still be "
                    f"in effect; run `ledgerdrill cleanup` and check the platform by hand."
                ) from exc
            self.reverted = True
            if still_pending:
                self.journal.mark(self.entry_id, "revert-failed", error=still_pending)
            else:
                self.journal.mark(self.entry_id, "reverted")
            self.timeline.event("fault.reverted", self.fault.kind)
