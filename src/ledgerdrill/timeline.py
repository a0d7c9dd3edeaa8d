"""One clock and one record per scenario: instants, events and probe samples.

Durations always come from the monotonic clock (``mono_ns``); the UTC wall time
rides along for display and for joining with outside data such as Locust's
per-second statistics.  The clock is injected so tests use a fake one and never
sleep.
"""

from __future__ import annotations

import json
import threading
import time
from bisect import insort
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

JSONScalar = str | int | float | bool | None
Attributes = Mapping[str, Any]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, order=True)
class Instant:
    """A point in time: monotonic nanoseconds for arithmetic, UTC for people."""

    mono_ns: int
    wall: datetime = field(compare=False)

    def seconds_since(self, earlier: Instant) -> float:
        return (self.mono_ns - earlier.mono_ns) / NS_PER_S

    def plus(self, seconds: float) -> Instant:
        return Instant(
            self.mono_ns + round(seconds * NS_PER_S), self.wall + timedelta(seconds=seconds)
        )

    def to_json(self) -> dict[str, Any]:
        return {"mono_ns": self.mono_ns, "wall": self.wall.isoformat()}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Instant:
        return Instant(int(data["mono_ns"]), datetime.fromisoformat(str(data["wall"])))


class Clock(Protocol):
    def now(self) -> Instant: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock. Wall time is taken once and advanced monotonically, so the
    two never disagree about the order or spacing of instants (NTP steps are ignored)."""

    def __init__(self) -> None:
        self._mono0 = time.monotonic_ns()
        self._wall0 = datetime.now(UTC)

    def now(self) -> Instant:
        mono = time.monotonic_ns()
        return Instant(mono, self._wall0 + timedelta(microseconds=(mono - self._mono0) // 1000))

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to: ``sleep`` advances it instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._mono_ns = 1_000 * NS_PER_S
        self._wall = start or datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> Instant:
        with self._lock:
            return Instant(self._mono_ns, self._wall)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._mono_ns += round(seconds * NS_PER_S)
            self._wall += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


@dataclass(frozen=True)
class Event:
    """Something that happened: ``kind`` is a dotted family (``fault.injected``,
    ``runbook.step``, ``ha.promoted``), ``name`` says which."""

    kind: str
    name: str
    at: Instant
    attributes: Attributes = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "event",
            "kind": self.kind,
            "name": self.name,
            "at": self.at.to_json(),
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class Sample:
    """One probe observation. A probe never raises: a failure is a sample with ok=False."""

    probe: str
    at: Instant
    ok: bool
    latency_s: float
    detail: str = ""
    # per-step latencies, lag, days to expiry...: what the report plots beside ok/failed
    metrics: Mapping[str, float] = field(default_factory=dict)
    # "warn" marks a sample that is ok but close to trouble (a certificate expiring soon)
    warning: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "sample",
            "probe": self.probe,
            "at": self.at.to_json(),
            "ok": self.ok,
            "latency_s": self.latency_s,
            "detail": self.detail,
        }
        if self.metrics:
            data["metrics"] = dict(self.metrics)
        if self.warning:
            data["warning"] = self.warning
        return data


class Timeline:
    """Everything measured in one scenario, on one clock. Safe to append from many threads."""

    def __init__(self, clock: Clock, scenario: str = "") -> None:
        self.clock = clock
        self.scenario = scenario
        self.origin = clock.now()
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._samples: dict[str, list[Sample]] = {}

    # -- writing -----------------------------------------------------------------
    def event(self, kind: str, name: str, at: Instant | None = None, **attributes: Any) -> Event:
        ev = Event(kind, name, at or self.clock.now(), attributes)
        with self._lock:
            insort(self._events, ev, key=lambda e: e.at.mono_ns)
        return ev

    def add_event(self, event: Event) -> None:
        """Add an event made elsewhere (a platform's own log), keeping its instant."""
        with self._lock:
            insort(self._events, event, key=lambda e: e.at.mono_ns)

    def add_sample(self, sample: Sample) -> None:
        with self._lock:
            insort(self._samples.setdefault(sample.probe, []), sample, key=lambda s: s.at.mono_ns)

    # -- reading -----------------------------------------------------------------
    def events(self, kind: str | None = None, name: str | None = None) -> list[Event]:
        with self._lock:
            found = list(self._events)
        return [
            e
            for e in found
            if (kind is None or e.kind == kind) and (name is None or e.name == name)
        ]

    def first_event(self, kind: str, name: str | None = None) -> Event | None:
        found = self.events(kind, name)
        return found[0] if found else None

    def probes(self) -> list[str]:
        with self._lock:
            return sorted(self._samples)

    def samples(
        self, probe: str | None = None, start: Instant | None = None, end: Instant | None = None
    ) -> list[Sample]:
        """Samples of one probe (or all, by time) with ``start <= at <= end``."""
        with self._lock:
            if probe is None:
                pool = sorted(
                    (s for ss in self._samples.values() for s in ss), key=lambda s: s.at.mono_ns
                )
            else:
                pool = list(self._samples.get(probe, ()))
        return [
            s
            for s in pool
            if (start is None or s.at.mono_ns >= start.mono_ns)
            and (end is None or s.at.mono_ns <= end.mono_ns)
        ]

    def __iter__(self) -> Iterator[Event | Sample]:
        records: list[Event | Sample] = [*self.events(), *self.samples()]
        return iter(sorted(records, key=lambda r: r.at.mono_ns))

    # -- persistence -------------------------------------------------------------
    def to_jsonl(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            header = {
                "type": "timeline",
                "scenario": self.scenario,
                "origin": self.origin.to_json(),
            }
            out.write(json.dumps(header) + "\n")
            for record in self:
                out.write(json.dumps(record.to_json(), default=str) + "\n")

    @staticmethod
    def from_jsonl(path: Path, clock: Clock | None = None) -> Timeline:
        lines = path.read_text(encoding="utf-8").splitlines()
        timeline = Timeline(clock or FakeClock())
        for line in _parse_lines(lines):
            kind = line.get("type")
            if kind == "timeline":
                timeline.scenario = str(line.get("scenario", ""))
                timeline.origin = Instant.from_json(line["origin"])
            elif kind == "event":
                ev = Event(
                    line["kind"], line["name"], Instant.from_json(line["at"]), line["attributes"]
                )
                timeline._events.append(ev)
            elif kind == "sample":
                timeline.add_sample(
                    Sample(
                        line["probe"],
                        Instant.from_json(line["at"]),
                        bool(line["ok"]),
                        float(line["latency_s"]),
                        str(line.get("detail", "")),
                        {str(k): float(v) for k, v in line.get("metrics", {}).items()},
                        str(line.get("warning", "")),
                    )
                )
        return timeline


def _parse_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for raw in lines:
        if raw.strip():
            yield json.loads(raw)
