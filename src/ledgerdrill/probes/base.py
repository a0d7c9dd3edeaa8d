"""The probe interface and ``ProbeSampler``: a fixed grid of samples per probe.

A probe's ``sample()`` never raises -- a crash inside a probe is a failed sample
with the error as detail -- and is bounded by a per-sample timeout, so a hung dependency
shows up as failed samples, not as a hung run.

Samples overlap: a new one starts at every tick while earlier ones are still waiting for
an answer (each on its own instance of the probe: ``twin()``), so a probe waiting on its
timeout still samples every interval and an outage's end is seen within about one
interval, not one timeout. The sampler enforces a bound even for a probe that ignores its
``timeout_s``: a call that has not returned by ``HUNG_AFTER`` is recorded as a failed
sample ("no answer") and given up, as is an overdue call when sampling stops; calls in
flight are bounded (``max_in_flight``), and while all are taken and late each tick is
another failed sample. ``overdue`` tells a waiting drill that an answer is still
outstanding, so no recovery is declared on a probe that has gone quiet.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from ledgerdrill.timeline import Sample, Timeline

DEFAULT_INTERVAL_S = 0.2
MIN_INTERVAL_S = 0.05
# samples of one probe in flight at once: a 1 s timeout at 100 ms needs 11
MAX_IN_FLIGHT = 16


def hung_after_s(timeout_s: float) -> float:
    """How long a sample may run before it counts as hung (a failed sample)."""
    return max(4 * timeout_s + 1.0, 5.0)


class Probe(Protocol):
    """A probe may also offer ``twin() -> Probe``: a new instance with the same settings
    and its own connections, so that samples can overlap (see ``ProbeSampler``)."""

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


class _Call:
    """One ``safe_sample`` call of one probe instance, run by that instance's worker."""

    def __init__(self, probe: Probe, timeline: Timeline) -> None:
        self.probe = probe
        self.started = timeline.clock.now()
        self.done = threading.Event()
        self.sample: Sample | None = None
        self.given_up = False  # recorded as hung: its late answer, if any, is dropped


class _Worker:
    """The thread that runs one probe instance's calls, one at a time. A thread started
    per call cost about as much CPU as a cheap sample itself (issue 38); an instance
    never has two calls at once, so one thread each is enough. A hung call keeps its
    worker, as it kept its own thread before: bounded by the instances, ``max_in_flight``."""

    def __init__(
        self, probe: Probe, timeline: Timeline, timeout_s: float,
        on_done: Callable[[_Call], None],
    ) -> None:  # fmt: skip
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()

        def run() -> None:
            while (call := self._calls.get()) is not None:
                call.sample = safe_sample(probe, timeline, timeout_s)
                call.done.set()
                on_done(call)

        threading.Thread(target=run, name=f"probe-worker-{probe.name}", daemon=True).start()

    def submit(self, call: _Call) -> None:
        self._calls.put(call)

    def stop(self) -> None:
        """Ends the thread once its current call (if any) returns."""
        self._calls.put(None)


class ProbeSampler:
    """Samples one probe every ``interval_s`` into the timeline until stopped.

    Ticks are on a fixed grid (start + k * interval). At each tick a new sample starts
    while earlier ones are still in flight, up to ``max_in_flight`` (enough to cover the
    probe's timeout, so a probe waiting on a timeout is not blind for that long): each on
    its own instance of the probe (``probe.twin()``: its own connection), so one hung
    request cannot hold up the next. A probe without ``twin`` has one sample in flight
    at a time. A tick that finds every slot taken records a failed sample when the oldest
    call has run past its timeout ("no answer"), else it is skipped (slow, not yet late).
    A call that outlives ``hung_after_s`` is recorded once as a failed sample dated at its
    start and given up; its thread keeps its slot until it returns, so threads stay
    bounded by ``max_in_flight``.
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
        self._twin: Callable[[], Probe] | None = getattr(probe, "twin", None)
        self.max_in_flight = (
            1 if self._twin is None
            else min(MAX_IN_FLIGHT, math.ceil(self.timeout_s / interval_s) + 1)
        )  # fmt: skip
        self.count = 0
        self._lock = threading.Lock()
        self._in_flight: list[_Call] = []
        self._idle: list[Probe] = [probe]  # instances not in a call
        self._workers: dict[int, _Worker] = {}  # id(instance) -> its worker
        self._instances = 1
        self._closed = False  # sampling ended: instances are closed as they come back
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{probe.name}", daemon=True)

    def start(self) -> ProbeSampler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    @property
    def instances(self) -> int:
        """Probe instances made so far (the probe and its twins): at most max_in_flight."""
        return self._instances

    def _record(self, sample: Sample) -> None:
        self.timeline.add_sample(sample)
        self.count += 1

    def _finished(self, call: _Call) -> None:
        with self._lock:
            self._in_flight.remove(call)
            if not call.given_up and call.sample is not None:
                self._record(call.sample)
            if not self._closed:
                self._idle.append(call.probe)
                return
            worker = self._workers.pop(id(call.probe), None)
        if worker is not None:
            worker.stop()
        _close(call.probe)  # a late call after sampling ended: its connections go too

    def _close_instances(self) -> None:
        """Sampling ended: close every instance's connections (the probe's own and its
        twins'); one still in a call is closed when that call comes back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            workers = [self._workers.pop(id(instance), None) for instance in idle]
        for worker in workers:
            if worker is not None:
                worker.stop()
        for instance in idle:
            _close(instance)

    def _give_up(self, call: _Call, ran_s: float) -> None:
        """Under the lock: one failed sample, dated at the call's start."""
        call.given_up = True
        self._record(
            Sample(
                self.probe.name, call.started, False, ran_s,
                f"no answer after {ran_s:.2f}s (timeout {self.timeout_s:g}s; probe hung)",
            )
        )  # fmt: skip

    def _tick(self) -> None:
        clock = self.timeline.clock
        bound_s = hung_after_s(self.timeout_s)
        instance: Probe | None = None
        with self._lock:
            now = clock.now()
            for call in self._in_flight:
                ran_s = now.seconds_since(call.started)
                if not call.given_up and not call.done.is_set() and ran_s >= bound_s:
                    self._give_up(call, ran_s)
            if len(self._in_flight) < self.max_in_flight:
                if self._idle:
                    instance = self._idle.pop()
                elif self._twin is not None:
                    self._instances += 1
                    instance = self._twin()
            elif self._in_flight:
                oldest = min(self._in_flight, key=lambda c: c.started.mono_ns)
                waited_s = now.seconds_since(oldest.started)
                if waited_s > self.timeout_s:
                    self._record(
                        Sample(
                            self.probe.name, now, False, 0.0,
                            f"no answer: {len(self._in_flight)} sample(s) in flight, the "
                            f"oldest started {waited_s:.1f}s ago has not returned (probe hung)",
                        )
                    )  # fmt: skip
            if instance is not None:
                worker = self._workers.get(id(instance))
                if worker is None:
                    worker = self._workers[id(instance)] = _Worker(
                        instance, self.timeline, self.timeout_s, self._finished
                    )
                # under the lock: the call cannot finish before it is in the list
                call = _Call(instance, self.timeline)
                self._in_flight.append(call)
                worker.submit(call)

    def _drain(self) -> None:
        """At stop: wait for the calls in flight until their timeout; any still out is a
        failed sample (an overdue answer is not health)."""
        clock = self.timeline.clock
        with self._lock:
            calls = [c for c in self._in_flight if not c.given_up]
        for call in calls:
            left_s = self.timeout_s - clock.now().seconds_since(call.started)
            call.done.wait(max(0.0, left_s) + 0.05)
        with self._lock:
            for call in self._in_flight:
                if not call.given_up and not call.done.is_set():
                    self._give_up(call, clock.now().seconds_since(call.started))

    def overdue(self) -> bool:
        """A sample has been running past its timeout: an answer is outstanding."""
        now = self.timeline.clock.now()
        with self._lock:
            return any(
                not call.done.is_set() and now.seconds_since(call.started) > self.timeout_s
                for call in self._in_flight
            )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        clock = self.timeline.clock
        origin = clock.now()
        tick = 0
        while not self._stop.is_set() and self.count < self.max_samples:
            self._tick()
            elapsed = clock.now().seconds_since(origin)
            tick = max(tick + 1, int(elapsed / self.interval_s) + 1)
            wait = tick * self.interval_s - elapsed
            if self._stop.wait(max(0.0, wait)):
                break
        self._drain()
        self._close_instances()


def _close(probe: Probe) -> None:
    close = getattr(probe, "close", None)
    if callable(close):
        # closing is tidying up: a probe that fails to close changes no result
        with contextlib.suppress(Exception):
            close()
