"""Events a platform records outside the harness process, merged into the timeline.

The sandbox's daemon (supervisor, HA controller) appends to a JSON-lines file; each
line carries ``CLOCK_MONOTONIC`` nanoseconds, which on Linux is one clock for every
process on the machine, so its events land on a scenario's timeline exactly where
they happened. Other backends (Kubernetes events, Azure long-running operations)
produce the same ``Event`` objects from their own sources.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerdrill.timeline import Event, Instant


class EventLog:
    """Append-only, multi-process safe for small lines (O_APPEND writes are atomic)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, kind: str, name: str, attributes: dict[str, Any] | None = None) -> None:
        line = {
            "mono_ns": time.monotonic_ns(),
            "wall": datetime.now(UTC).isoformat(),
            "kind": kind,
            "name": name,
            "attributes": attributes or {},
        }
        data = (json.dumps(line, default=str) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def read(self, since: Instant | None = None, until: Instant | None = None) -> list[Event]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for raw in lines:
            try:
                line = json.loads(raw)
                at = Instant(int(line["mono_ns"]), datetime.fromisoformat(line["wall"]))
            except (ValueError, KeyError):
                continue  # a torn line from a process killed mid-write
            if since is not None and at.mono_ns < since.mono_ns:
                continue
            if until is not None and at.mono_ns > until.mono_ns:
                continue
            events.append(Event(line["kind"], line["name"], at, line.get("attributes", {})))
        return events
