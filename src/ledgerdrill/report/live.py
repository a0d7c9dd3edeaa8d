"""Live progress during a game day: the scenario, its phase, time since the fault
against the RTO target, each probe's state, and the load.

On a terminal it updates one line in place; in a CI log it prints a plain line when
the phase changes and every ``plain_every_s``. It only *reads* the drill's
timeline from a background thread, so it cannot disturb the measurement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ledgerdrill.measure import fmt_s
from ledgerdrill.timeline import Timeline

PHASES = {
    "load.started": "load starting",
    "steady-state.passed": "steady state ok",
    "fault.injected": "fault injected",
    "fault.detected": "fault detected",
    "runbook.approval-requested": "runbook step awaiting approval",
    "runbook.started": "runbook step",
    "runbook.done": "runbook done",
    "recovery.observed": "recovered, observing",
    "load.phase:post-recovery": "post-recovery load, observing",
    "recovery.relapsed": "RELAPSED, observing",
    "recovery.timeout": "not recovered",
    "fault.reverting": "reverting",
    "fault.reverted": "reverted",
}


class LiveProgress:
    """``emit(line, in_place)`` writes: in place on a terminal (the line is rewritten
    every ``refresh_s``), one line per phase change and every ``plain_every_s`` in a
    log. Inside pytest the plugin passes a writer that suspends output capture."""

    def __init__(
        self,
        scenario: str,
        timeline: Timeline,
        *,
        rto_target_s: float | None,
        emit: Callable[[str, bool], None],
        in_place: bool,
        refresh_s: float = 0.5,
        plain_every_s: float = 10.0,
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.rto_target_s = rto_target_s
        self.emit = emit
        self.in_place = in_place
        self.refresh_s = refresh_s
        self.plain_every_s = plain_every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_phase = ""
        self._last_plain = 0.0

    # -- what is shown -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        # an event is shown by its kind, or by kind and name ("load.phase:post-recovery")
        shown = [
            label
            for e in self.timeline.events()
            if (label := PHASES.get(e.kind) or PHASES.get(f"{e.kind}:{e.name}"))
        ]
        phase = shown[-1] if shown else "starting"
        injected = self.timeline.first_event("fault.injected")
        since = self.timeline.clock.now().seconds_since(injected.at) if injected else None
        probes = {}
        for name in self.timeline.probes():
            recent = self.timeline.samples(name)[-1:]
            if recent:
                sample = recent[0]
                probes[name] = "ok" if sample.ok and not sample.warning else (
                    "warn" if sample.ok else "FAILED")  # fmt: skip
        return {"phase": phase, "since_fault_s": since, "probes": probes}

    def line(self, snap: dict[str, Any]) -> str:
        since = snap["since_fault_s"]
        clock = "" if since is None else f" {fmt_s(since)} since the fault"
        target = f" (RTO target {fmt_s(self.rto_target_s)})" if self.rto_target_s and since else ""
        failing = [n for n, s in snap["probes"].items() if s == "FAILED"]
        health = f"; failing: {', '.join(failing)}" if failing else "; all probes ok"
        return f"[{self.scenario}] {snap['phase']}{clock}{target}{health if snap['probes'] else ''}"

    # -- the thread --------------------------------------------------------------------
    def start(self) -> LiveProgress:
        self._thread = threading.Thread(target=self._run, name="live-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self.in_place:
            self.emit("", True)  # clear the rewritten line

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                snap = self.snapshot()
                now = time.monotonic()
                if self.in_place:
                    self.emit(self.line(snap), True)
                elif (
                    snap["phase"] != self._last_phase
                    or now - self._last_plain >= self.plain_every_s
                ):
                    self.emit(self.line(snap), False)
                    self._last_phase, self._last_plain = snap["phase"], now
            except Exception:  # progress is a courtesy: it must never break a drill
                return
