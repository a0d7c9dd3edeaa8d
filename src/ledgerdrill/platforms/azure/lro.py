"""Long-running ARM operations: always awaited with a timeout, progress on the
timeline, continuation token journaled so a later ``cleanup`` can resume them.

Order of writes: the fault journal's intent (with the fault's undo) is on disk before
the first ARM call; the operation record with its continuation token is written right
after ARM accepted the request (a token only exists then). A crash between the two
loses only the token, never the undo: the fault's revert still works without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from ledgerdrill.errors import PlatformError
from ledgerdrill.timeline import Clock

EventSink = Callable[[str, str, Mapping[str, Any]], None]

# The only SDK methods a journal record may name: a record read back from disk is
# data, and must not be able to call anything else on the clients.
RESUMABLE = frozenset(
    {
        "compute.virtual_machine_scale_sets.begin_power_off",
        "compute.virtual_machine_scale_sets.begin_deallocate",
        "compute.virtual_machine_scale_sets.begin_start",
        "compute.virtual_machine_scale_sets.begin_restart",
        "postgres.servers.begin_restart",
        "postgres.servers.begin_create_or_update",
        "postgres.servers.begin_update",
    }
)
TERMINAL = ("succeeded", "failed")


class AzureOperationError(PlatformError):
    """An ARM call or operation failed; ``code`` is ARM's error code when it gave one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(f"{message} [{code}]" if code else message)
        self.code = code


class OperationTimeout(PlatformError):
    """An operation did not finish within its timeout; it stays journaled as pending."""


def arm_error(exc: AzureError, what: str) -> AzureOperationError:
    code = ""
    if isinstance(exc, HttpResponseError) and exc.error is not None:
        code = str(exc.error.code or "")
    message = exc.message if isinstance(exc, HttpResponseError) else str(exc)
    return AzureOperationError(f"{what}: {message}", code)


@dataclass(frozen=True)
class OperationRecord:
    id: str
    method: str  # one of RESUMABLE
    args: tuple[str, ...]  # the path arguments the method needs to resume
    purpose: str  # what it was for, for people ("power off node aks-np-1")
    continuation_token: str
    started_at: str
    status: str = "running"  # running | timed-out | succeeded | failed
    error: str = ""

    @property
    def pending(self) -> bool:
        return self.status not in TERMINAL


class OperationJournal:
    """JSON lines, fsynced like the fault journal; one file per platform state folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def started(self, record: OperationRecord) -> None:
        self._append({"op": "started", **asdict(record)})

    def mark(self, op_id: str, status: str, error: str = "") -> None:
        self._append({"op": "status", "id": op_id, "status": status, "error": error})

    def records(self) -> list[OperationRecord]:
        out: dict[str, OperationRecord] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for raw in lines:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a torn last line after a kill mid-write
            if line.get("op") == "started":
                fields = {k: v for k, v in line.items() if k != "op"}
                fields["args"] = tuple(fields["args"])
                out[line["id"]] = OperationRecord(**fields)
            elif line.get("id") in out:
                old = out[line["id"]]
                out[old.id] = OperationRecord(
                    **{**asdict(old), "status": line["status"], "error": line.get("error", "")}
                )
        return list(out.values())

    def pending(self) -> list[OperationRecord]:
        return [r for r in self.records() if r.pending]

    def _append(self, line: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(line, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


class OperationRunner:
    """Starts, awaits and resumes ARM long-running operations."""

    def __init__(
        self,
        clients: Mapping[str, Any],
        journal: OperationJournal,
        clock: Clock,
        on_event: EventSink,
        *,
        check_every_s: float = 0.2,
    ) -> None:
        self.clients = clients
        self.journal = journal
        self.clock = clock
        self.on_event = on_event
        self.check_every_s = check_every_s

    def _method(self, name: str) -> Callable[..., Any]:
        if name not in RESUMABLE:
            raise PlatformError(f"operation {name!r} is not one ledgerdrill starts or resumes")
        client_name, group, method = name.split(".")
        return getattr(getattr(self.clients[client_name], group), method)  # type: ignore[no-any-return]

    def run(
        self,
        method: str,
        args: Sequence[str],
        purpose: str,
        timeout_s: float,
        **kwargs: Any,
    ) -> Any:
        begin = self._method(method)
        try:
            poller = begin(*args, **kwargs)
        except AzureError as exc:
            self.on_event("azure.operation", "rejected", {"purpose": purpose, "error": str(exc)})
            raise arm_error(exc, purpose) from exc
        record = OperationRecord(
            id=uuid.uuid4().hex[:12],
            method=method,
            args=tuple(args),
            purpose=purpose,
            continuation_token=poller.continuation_token(),
            started_at=datetime.now(UTC).isoformat(),
        )
        self.journal.started(record)
        self.on_event("azure.operation", "started", {"purpose": purpose, "operation": record.id})
        return self._await(record, poller, timeout_s)

    def resume(self, record: OperationRecord, timeout_s: float) -> Any:
        """Poll an operation a killed run started, from its journaled continuation token."""
        begin = self._method(record.method)
        try:
            poller = begin(*record.args, continuation_token=record.continuation_token)
        except (AzureError, ValueError) as exc:
            self.journal.mark(record.id, "failed", f"cannot resume: {exc}")
            raise PlatformError(f"cannot resume {record.purpose}: {exc}") from exc
        self.on_event(
            "azure.operation", "resumed", {"purpose": record.purpose, "operation": record.id}
        )
        return self._await(record, poller, timeout_s)

    def _await(self, record: OperationRecord, poller: Any, timeout_s: float) -> Any:
        try:
            return self._poll(record, poller, timeout_s)
        except AzureError as exc:
            # a terminal Failed (or an error while polling) surfaces from wait()/result()
            error = arm_error(exc, record.purpose)
            self.journal.mark(record.id, "failed", str(error))
            self.on_event(
                "azure.operation",
                "failed",
                {"purpose": record.purpose, "operation": record.id, "code": error.code},
            )
            raise error from exc

    def _poll(self, record: OperationRecord, poller: Any, timeout_s: float) -> Any:
        start = self.clock.now()
        last_status = ""
        while True:
            status = str(poller.status())
            if status != last_status:
                last_status = status
                self.on_event(
                    "azure.operation",
                    "progress",
                    {"purpose": record.purpose, "operation": record.id, "status": status},
                )
            if poller.done():
                break
            remaining = timeout_s - self.clock.now().seconds_since(start)
            if remaining <= 0:
                # still running in Azure: left pending in the journal for resume/cleanup
                self.journal.mark(record.id, "timed-out")
                self.on_event(
                    "azure.operation",
                    "timed-out",
                    {"purpose": record.purpose, "operation": record.id, "timeout_s": timeout_s},
                )
                raise OperationTimeout(
                    f"{record.purpose}: not finished within {timeout_s:g} s "
                    f"(operation {record.id} is journaled and can be resumed)"
                )
            poller.wait(min(self.check_every_s, remaining))
        result = poller.result()
        self.journal.mark(record.id, "succeeded")
        self.on_event(
            "azure.operation", "succeeded", {"purpose": record.purpose, "operation": record.id}
        )
        return result

    def settle_pending(self, timeout_s: float) -> list[str]:
        """Await every operation a previous run left running (before undoing anything,
        so a start never races a power-off still in flight). Returns their purposes."""
        done = []
        for record in self.journal.pending():
            with contextlib.suppress(PlatformError):
                # a failed old operation is recorded; the undo that follows decides
                self.resume(record, timeout_s)
            done.append(record.purpose)
        return done
