"""One drill at a time per target: an exclusive ``flock`` on ``<state>/locks/<target>.lock``.

The kernel drops a ``flock`` when its holder dies, even by SIGKILL, so a lock left
by a dead run is recognised as stale by simply being free; the file's contents
(pid, run id, since) only serve to say who holds a lock that is not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerdrill.errors import SafetyViolation


class TargetLock:
    def __init__(self, state_dir: Path, target: str, run_id: str) -> None:
        self.path = state_dir / "locks" / f"{target}.lock"
        self.target = target
        self.run_id = run_id
        self._fd: int | None = None
        self.previous: dict[str, Any] | None = None  # what a stale lock said, if any

    def acquire(self) -> TargetLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise SafetyViolation(
                f"target {self.target} is being drilled by run {holder.get('run_id', '?')} "
                f"(pid {holder.get('pid', '?')}, since {holder.get('since', '?')}); "
                "one drill at a time per target"
            ) from None
        self.previous = _read(fd) or None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        info = {"pid": os.getpid(), "run_id": self.run_id, "since": datetime.now(UTC).isoformat()}
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> TargetLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
