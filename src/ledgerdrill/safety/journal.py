"""The fault journal: the undo record is on disk (fsynced) BEFORE a fault is applied.

One JSON-lines file per run under ``<state>/journal/``. A fault's entry moves through
``intent`` -> ``injected`` -> ``reverted`` (or ``revert-failed``, which stays until a
``cleanup`` succeeds). A runbook step's entry moves through ``intent`` -> ``stage``
lines (one per completed stage, with what it produced) -> ``done``; one that recovers
from a fault names that fault's entry (``resolves``). Every intent carries the
platform's shape read at the run's steady-state gate (``baseline``), so that
``cleanup`` can check the platform reads back as it was. A run whose every entry is
reverted or done deletes its file, so an empty journal folder means nothing is left
behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerdrill.errors import LedgerdrillError, SafetyViolation
from ledgerdrill.processes import pid_alive

DEFAULT_STATE_DIR = Path(".ledgerdrill")


@dataclass(frozen=True)
class JournalEntry:
    id: str
    run_id: str
    pid: int
    target: str
    target_file: str | None
    platform: str
    record: Mapping[str, Any]  # the fault's undo record
    created_at: str
    status: str = "intent"  # intent | injected | stage | reverted | revert-failed | done
    error: str = ""
    path: Path = field(default=Path(), compare=False)
    # a runbook step's completed stages, with what each produced
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # the platform's shape at the run's steady-state gate (``platforms.shape``)
    baseline: Mapping[str, Any] | None = None
    # a runbook step that recovers from a fault: that fault's entry id
    resolves: str | None = None

    @property
    def pending(self) -> bool:
        return self.status not in FINISHED

    @property
    def is_runbook(self) -> bool:
        return "runbook" in self.record

    @property
    def kind(self) -> str:
        return str(self.record.get("runbook") or self.record.get("fault"))

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in (self.record.get("params") or {}).items())
        what = "runbook step " if self.is_runbook else ""
        return f"{what}{self.kind}({params}) on {self.target} [{self.status}]"


FINISHED = frozenset({"reverted", "done"})


class FaultJournal:
    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, run_id: str | None = None) -> None:
        self.folder = state_dir / "journal"
        self.run_id = run_id or new_run_id()
        self.path = self.folder / f"{self.run_id}.jsonl"
        self.written: list[dict[str, Any]] = []

    # -- writing (this run) --------------------------------------------------------
    def intent(
        self,
        record: Mapping[str, Any],
        *,
        target: str,
        target_file: Path | None,
        platform: str,
        touches: Sequence[str] = (),
        overrides: Sequence[str] = (),
        baseline: Mapping[str, Any] | None = None,
        resolves: str | None = None,
    ) -> str:
        """``touches``: what the fault acts on, as the plan showed it; ``overrides``:
        blackout windows in effect that the operator overrode by name (for the audit);
        ``baseline``: the platform's shape before the drill; ``resolves``: the fault
        entry a runbook step recovers from."""
        entry_id = uuid.uuid4().hex[:12]
        line: dict[str, Any] = {
            "op": "intent",
            "id": entry_id,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "target": target,
            "target_file": str(target_file) if target_file else None,
            "platform": platform,
            "record": dict(record),
            "at": datetime.now(UTC).isoformat(),
        }
        if touches:
            line["touches"] = list(touches)
        if overrides:
            line["overrides_blackout"] = list(overrides)
        if baseline is not None:
            line["baseline"] = dict(baseline)
        if resolves:
            line["resolves"] = resolves
        self._append(line)
        return entry_id

    def stage(
        self, entry_id: str, name: str, data: Mapping[str, Any], path: Path | None = None
    ) -> None:
        """A runbook step completed stage ``name`` (durable before the next begins)."""
        line = {
            "op": "stage", "id": entry_id, "stage": name, "data": dict(data),
            "at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        self._append(line, path or self.path)

    def mark(self, entry_id: str, status: str, error: str = "", path: Path | None = None) -> None:
        """Record a status change; ``path`` appends to another run's file (used by cleanup)."""
        line = {"op": status, "id": entry_id, "at": datetime.now(UTC).isoformat()}
        if error:
            line["error"] = error
        self._append(line, path or self.path)
        self._drop_if_clean(path or self.path)

    def _append(self, line: Mapping[str, Any], path: Path | None = None) -> None:
        target = path or self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(line, default=str) + "\n").encode()
        # kept for the run's evidence bundle: a clean run deletes its journal file
        self.written.append(dict(line))
        # O_APPEND + fsync: the record survives a SIGKILL or power loss right after this call
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _drop_if_clean(self, path: Path) -> None:
        if path.exists() and not any(e.pending for e in read_journal_file(path)):
            path.unlink()

    # -- reading (every run) -------------------------------------------------------
    def entries(self) -> list[JournalEntry]:
        return list(iter_entries(self.folder))

    def left_by_killed_runs(self) -> list[JournalEntry]:
        """Faults still pending whose run's process is gone: a run killed mid-drill."""
        return [e for e in self.pending() if not pid_alive(e.pid)]

    def pending(self) -> list[JournalEntry]:
        return [e for e in self.entries() if e.pending]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def iter_entries(folder: Path) -> Iterator[JournalEntry]:
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.jsonl")):
        yield from read_journal_file(path)


def read_journal_file(path: Path) -> list[JournalEntry]:
    entries: dict[str, JournalEntry] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            # a torn last line from a kill mid-write: the intent before it is what matters
            if number == len(lines):
                continue
            raise LedgerdrillError(f"{path}: line {number} is not valid JSON") from None
        if line.get("op") == "intent":
            entries[line["id"]] = JournalEntry(
                id=line["id"],
                run_id=line["run_id"],
                pid=int(line["pid"]),
                target=line["target"],
                target_file=line.get("target_file"),
                platform=line["platform"],
                record=line["record"],
                created_at=line["at"],
                path=path,
                baseline=line.get("baseline"),
                resolves=line.get("resolves"),
            )
        elif line.get("id") in entries:
            old = entries[line["id"]]
            changes: dict[str, Any] = {"status": line["op"], "error": line.get("error", "")}
            if line["op"] == "stage":
                changes["stages"] = {**old.stages, str(line["stage"]): line.get("data") or {}}
            entries[line["id"]] = JournalEntry(**{**old.__dict__, **changes})
    return list(entries.values())


def refuse_leftovers(leftovers: Sequence[JournalEntry]) -> None:
    """No drill starts over faults a killed run left behind: say which, and what to do."""
    if leftovers:
        listed = "; ".join(e.describe() for e in leftovers)
        raise SafetyViolation(
            f"the fault journal holds {len(leftovers)} fault(s) left by a killed run: {listed}. "
            "Run `ledgerdrill cleanup` first, or pass --cleanup-first"
        )
