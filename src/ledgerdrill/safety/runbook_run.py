"""Running one runbook step: guard -> prepare -> approval -> journal -> run -> verify.

    step = run_step(action, scenario="region-outage", journal=..., guard=..., ...)

The approval wait is its own span on the timeline (``runbook.approval-requested`` to
``runbook.approved``), apart from the step's own work (``runbook.started`` to
``runbook.done``): a report can tell the platform's recovery from people's decision
time. The step is journaled before it acts and each stage as it completes, so that
``ledgerdrill cleanup`` can finish a step a killed run left half done without
repeating what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerdrill.errors import FaultError, LedgerdrillError
from ledgerdrill.faults.base import Evidence, JSONParams
from ledgerdrill.runbook.base import RunbookAction
from ledgerdrill.safety.approval import ApprovalRequest, Approver, Decision
from ledgerdrill.safety.bounded import bounded
from ledgerdrill.safety.guard import SafetyGuard
from ledgerdrill.safety.journal import FaultJournal
from ledgerdrill.safety.signals import deferred_signals
from ledgerdrill.timeline import Instant, Timeline


class RunbookDeclined(LedgerdrillError):
    """A runbook step was not approved: the scenario stops and its faults are reverted."""


@dataclass
class StepRecord:
    """What happened to one runbook step in a real run."""

    action: RunbookAction
    decision: Decision
    requested_at: Instant
    decided_at: Instant
    entry_id: str | None = None
    started_at: Instant | None = None
    done_at: Instant | None = None
    evidence: Evidence | None = None
    # what finishing it did, when an interrupt or a failure stopped it half way
    finished_after_interrupt: str | None = None

    @property
    def decision_s(self) -> float:
        return self.decided_at.seconds_since(self.requested_at)

    @property
    def run_s(self) -> float | None:
        """Seconds from the step's start to its verified end (None: it did not finish)."""
        if self.started_at is None or self.done_at is None:
            return None
        return self.done_at.seconds_since(self.started_at)


def run_step(
    action: RunbookAction,
    *,
    scenario: str,
    journal: FaultJournal,
    guard: SafetyGuard,
    timeline: Timeline,
    approver: Approver,
    call_timeout_s: float,
    target_file: Path | None = None,
    baseline: Mapping[str, Any] | None = None,
    resolves_entry: str | None = None,
    on_journaled: Callable[[StepRecord], None] | None = None,
) -> StepRecord:
    """Run ``action``; ``RunbookDeclined`` when it is not approved, ``SafetyViolation``
    when the guard refuses it (nothing touched either way). ``on_journaled`` gets the
    record as soon as the step is journaled, so a caller interrupted while the step runs
    still knows it has a step to finish."""
    guard.check_step(action)
    bounded(action.prepare, call_timeout_s, f"reading the platform before {action.kind}")
    changes = tuple(action.changes())
    requested = timeline.clock.now()
    timeline.event(
        "runbook.approval-requested", action.kind, at=requested,
        description=action.describe(), changes=list(changes),
    )  # fmt: skip
    decision = approver(
        ApprovalRequest(scenario, action.kind, action.describe(), changes, action=action)
    )
    decided = timeline.clock.now()
    record = StepRecord(action, decision, requested, decided)
    waited = round(record.decision_s, 3)
    if not decision.approved:
        timeline.event(
            "runbook.declined", action.kind, by=decision.by, reason=decision.reason,
            waited_s=waited,
        )  # fmt: skip
        raise RunbookDeclined(
            f"runbook step {action.kind} declined by {decision.by}: "
            f"{decision.reason or 'not approved'}"
        )
    timeline.event("runbook.approved", action.kind, by=decision.by, waited_s=waited)
    touches = [str(t) for t in action.targets()]
    # the entry on disk and the caller knowing of it: both or neither. A Ctrl-C that
    # lands between them (the interrupt trials' SIGINT at the step's intent did, once in
    # a fresh-clone CI run) left an entry nobody finished: "1 journal entries pending"
    with deferred_signals():
        entry = journal.intent(
            action.record(),
            target=guard.target.name,
            target_file=target_file,
            platform=action.platform.kind,
            touches=touches,
            baseline=baseline,
            resolves=resolves_entry,
        )
        record.entry_id = entry
        if on_journaled is not None:  # from here on an interrupt leaves a step to finish
            on_journaled(record)

    def journal_stage(name: str, data: JSONParams) -> None:
        journal.stage(entry, name, data)
        timeline.event("runbook.stage", action.kind, stage=name, **_shown(data))

    action.recorder = journal_stage
    record.started_at = timeline.clock.now()
    timeline.event("runbook.started", action.kind, at=record.started_at)
    try:
        bounded(action.run, call_timeout_s, action.describe())
        record.evidence = bounded(action.verify, call_timeout_s, f"verify of {action.kind}")
    except Exception as exc:
        timeline.event("runbook.failed", action.kind, error=str(exc))
        raise FaultError(f"runbook step {action.kind} failed: {exc}") from exc
    journal.mark(entry, "done")
    record.done_at = timeline.clock.now()
    timeline.event(
        "runbook.done", action.kind, at=record.done_at,
        duration_s=round(record.done_at.seconds_since(record.started_at), 3),
        evidence=record.evidence.summary,
    )  # fmt: skip
    return record


def _shown(data: JSONParams) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)}
