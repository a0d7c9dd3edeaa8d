"""The probe interface and ``ProbeSampler``: one thread per probe, a fixed interval.

A probe's ``sample()`` never raises -- a crash inside a probe is a failed sample
with the error as detail -- and is bounded by a per-sample timeout shorter than the
interval, so a hung dependency shows up as failed samples, not as a hung run.
"""

from __future__ import annotations

import threading
from typing import Protocol

from ledgerdrill.timeline import Sample, Timeline

DEFAULT_INTERVAL_S = 0.2
MIN_INTERVAL_S = 0.05


class Probe(Protocol):
    name: str
    # counts for the scenario's RTO (a purely informational probe sets this False)
    counts_for_rto: bool

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        """Observe once; never raise."""
        ...


def safe_sample(probe: Probe, timeline: Timeline, timeout_s: float) -> Sample:
    """Call ``probe.sample`` and turn any exception into a failed sample."""
    start = timeline.clock.now()
    try:
        return probe.sample(timeline, timeout_s)
    except Exception as exc:  # a probe that crashes reports a failure, never raises
        took = timeline.clock.now().seconds_since(start)
        return Sample(probe.name, start, False, took, f"probe error: {type(exc).__name__}: {exc}")


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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{probe.name}", daemon=True)

    def start(self) -> ProbeSampler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        clock = self.timeline.clock
        origin = clock.now()
        tick = 0
        while not self._stop.is_set() and self.count < self.max_samples:
            self.timeline.add_sample(safe_sample(self.probe, self.timeline, self.timeout_s))
            self.count += 1
            elapsed = clock.now().seconds_since(origin)
            tick = max(tick + 1, int(elapsed / self.interval_s) + 1)
            wait = tick * self.interval_s - elapsed
            if self._stop.wait(max(0.0, wait)):
                break
