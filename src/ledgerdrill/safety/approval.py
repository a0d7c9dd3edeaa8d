"""Who approves a runbook step, and how long the decision took.

The reference papers ask for "documented failover and failback procedures with
approval checkpoints for finance, security, and platform operations". A runbook step
runs only once approved; the wait is its own span on the timeline, so a report can
tell the platform's recovery from people's decision time.

Asked in this order, the first answer decides:

1. ``--interactive``: the person at the terminal;
2. a ``pytest_ledgerdrill_approve_runbook_step`` hook implementation (True approves,
   False declines, None passes the question on): a change-management system, a chat-ops
   bot, anything else;
3. the target file's ``safety.runbook_approval.by``:
   ``delay`` (default) approves after ``runbook_approval_delay`` -- a rehearsal of the
   decision time, recorded as such; ``environment`` reads ``LEDGERDRILL_RUNBOOK_APPROVE``
   and ``LEDGERDRILL_RUNBOOK_REJECT`` (step kinds separated by commas, or ``all``): what
   a CI job sets; ``file`` reads a YAML file (``approve: [kinds]``, ``reject: [kinds]``)
   until the step is named in it or the timeout passes: what an approver outside the
   run can write; ``terminal`` asks on the controlling terminal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ledgerdrill.errors import ConfigError

if TYPE_CHECKING:
    from ledgerdrill.runbook.base import RunbookAction

APPROVE_ENV = "LEDGERDRILL_RUNBOOK_APPROVE"
REJECT_ENV = "LEDGERDRILL_RUNBOOK_REJECT"


@dataclass(frozen=True)
class ApprovalRequest:
    scenario: str
    kind: str  # the step's kind, e.g. region-failover
    description: str
    changes: tuple[str, ...] = ()
    action: RunbookAction | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str  # who or what decided, for the audit
    reason: str = ""
    details: Mapping[str, str] = field(default_factory=dict)


Approver = Callable[[ApprovalRequest], Decision]
# an approver that may pass: None when it has no answer for this step
MaybeApprover = Callable[[ApprovalRequest], Decision | None]


def _named(listed: object, kind: str) -> bool:
    if isinstance(listed, str):
        listed = [part.strip() for part in listed.split(",")]
    if not isinstance(listed, list):
        return False
    names = {str(item).strip() for item in listed}
    return kind in names or "all" in names


def from_environment(env: Mapping[str, str] | None = None) -> Approver:
    """A CI job's answer: the step kinds it approves or rejects, from the environment.
    A step named in neither is declined (an unattended run never guesses yes)."""
    values = os.environ if env is None else env

    def decide(request: ApprovalRequest) -> Decision:
        if _named(values.get(REJECT_ENV, ""), request.kind):
            return Decision(False, f"environment {REJECT_ENV}", f"{request.kind} rejected")
        if _named(values.get(APPROVE_ENV, ""), request.kind):
            return Decision(True, f"environment {APPROVE_ENV}")
        return Decision(
            False,
            "environment",
            f"neither {APPROVE_ENV} nor {REJECT_ENV} names {request.kind} (or all)",
        )

    return decide


def _read_approvals(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable approvals file ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"approve", "reject"}:
        raise ConfigError(
            f"{path}: an approvals file is a mapping with approve: and reject: lists of "
            "runbook step kinds (or all)"
        )
    return data


def from_file(
    path: Path,
    *,
    timeout_s: float,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Approver:
    """Wait (bounded) for the step to be named in the approvals file."""

    def decide(request: ApprovalRequest) -> Decision:
        started = clock()
        while True:
            data = _read_approvals(path)
            if _named(data.get("reject"), request.kind):
                return Decision(False, f"file {path}", f"{request.kind} rejected")
            if _named(data.get("approve"), request.kind):
                return Decision(True, f"file {path}")
            if clock() - started >= timeout_s:
                return Decision(
                    False, f"file {path}", f"nobody named {request.kind} within {timeout_s:g}s"
                )
            sleep(poll_s)

    return decide


def after_delay(delay_s: float, sleep: Callable[[float], None] = time.sleep) -> Approver:
    """No approver configured: approve after a fixed delay (a rehearsal of the time a
    decision takes; the report says it was not a person)."""

    def decide(_request: ApprovalRequest) -> Decision:
        sleep(delay_s)
        return Decision(True, f"delay ({delay_s:g}s, runbook_approval_delay: no person asked)")

    return decide


def on_terminal(tty_path: str = "/dev/tty") -> Approver:
    """Ask the person at the controlling terminal (pytest captures stdin)."""

    def decide(request: ApprovalRequest) -> Decision:
        try:
            with open(tty_path, "r+", encoding="utf-8") as tty:
                tty.write(f"\n  runbook step: {request.description}\n")
                for line in request.changes:
                    tty.write(f"    - {line}\n")
                tty.write("  approve? [y/N] ")
                tty.flush()
                answer = tty.readline().strip().lower()
        except OSError as exc:
            raise ConfigError(f"runbook approval on the terminal needs one: {exc}") from exc
        approved = answer in {"y", "yes"}
        return Decision(approved, "operator on the terminal", "" if approved else "declined")

    return decide


def chain(first: list[MaybeApprover], fallback: Approver) -> Approver:
    """The first approver with an answer decides; else ``fallback``."""

    def decide(request: ApprovalRequest) -> Decision:
        for approver in first:
            found = approver(request)
            if found is not None:
                return found
        return fallback(request)

    return decide
