"""The probe sampler before issue 33's step 1 (commit 5afec9e, ``probes/base.py``), for
``probe_overhead.py`` to measure both in one run: one call in flight per probe, the next
tick waiting until it returns. The classes as they were; only the imports changed."""

from __future__ import annotations

import threading

from ledgerdrill.probes.base import (
    DEFAULT_INTERVAL_S,
    MIN_INTERVAL_S,
    Probe,
    hung_after_s,
    safe_sample,
)
from ledgerdrill.timeline import Sample, Timeline


class _Call:
    """One ``safe_sample`` call in its own daemon thread."""

    def __init__(self, probe: Probe, timeline: Timeline, timeout_s: float) -> None:
        self.started = timeline.clock.now()
        self.done = threading.Event()
        self.sample: Sample | None = None

        def run() -> None:
            self.sample = safe_sample(probe, timeline, timeout_s)
            self.done.set()

        threading.Thread(target=run, name=f"probe-call-{probe.name}", daemon=True).start()


class ProbeSampler:
    """Samples one probe every ``interval_s`` into the timeline until stopped.

    Ticks are scheduled on a fixed grid (start + k * interval), so a slow sample
    delays only itself; ticks missed while a sample ran long are skipped, not bunched.
    """

    def __init__(
        self,
        probe: Probe,
        timeline: Timeline,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        max_samples: int = 100_000,
        timeout_s: float | None = None,
    ) -> None:
        if interval_s < MIN_INTERVAL_S:
            raise ValueError(f"probe interval {interval_s}s is below the {MIN_INTERVAL_S}s minimum")
        self.probe = probe
        self.timeline = timeline
        self.interval_s = interval_s
        # a sample longer than the interval delays only itself (its ticks are skipped)
        self.timeout_s = timeout_s if timeout_s else interval_s * 0.8
        self.max_samples = max_samples
        self.count = 0
        self._hung: _Call | None = None  # a call that outlived its bound, still running
        self._current: _Call | None = None  # the call being waited for
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{probe.name}", daemon=True)

    def start(self) -> ProbeSampler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _bounded_sample(self) -> Sample:
        clock = self.timeline.clock
        if self._hung is not None:
            if not self._hung.done.is_set():
                began = self._hung.started
                return Sample(
                    self.probe.name, clock.now(), False, 0.0,
                    f"no answer: its sample started {clock.now().seconds_since(began):.1f}s "
                    "ago has not returned (probe hung)",
                )  # fmt: skip
            self._hung = None  # it came back: its stale answer is dropped, sampling resumes
        call = self._current = _Call(self.probe, self.timeline, self.timeout_s)
        bound_s = hung_after_s(self.timeout_s)
        try:
            # in slices: a stop while an overdue call is outstanding records it at once
            while not call.done.wait(0.05):
                ran_s = clock.now().seconds_since(call.started)
                if ran_s >= bound_s or (self._stop.is_set() and ran_s > self.timeout_s):
                    self._hung = call
                    return Sample(
                        self.probe.name, call.started, False, ran_s,
                        f"no answer after {ran_s:.2f}s (timeout {self.timeout_s:g}s; probe hung)",
                    )  # fmt: skip
        finally:
            self._current = None
        assert call.sample is not None
        return call.sample

    def overdue(self) -> bool:
        """A sample has been running past its timeout: an answer is outstanding."""
        call = self._current or self._hung
        if call is None or call.done.is_set():
            return False
        return self.timeline.clock.now().seconds_since(call.started) > self.timeout_s

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        clock = self.timeline.clock
        origin = clock.now()
        tick = 0
        while not self._stop.is_set() and self.count < self.max_samples:
            self.timeline.add_sample(self._bounded_sample())
            self.count += 1
            elapsed = clock.now().seconds_since(origin)
            tick = max(tick + 1, int(elapsed / self.interval_s) + 1)
            wait = tick * self.interval_s - elapsed
            if self._stop.wait(max(0.0, wait)):
                break
