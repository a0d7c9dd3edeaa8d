"""Samples that overlap: a probe waiting on its timeout still samples every interval.

From ``ProbeSampler``'s definition: at each tick a new sample starts on its own probe
instance (``twin()``) while earlier ones are in flight, up to ``max_in_flight``; calls
stay bounded even when a probe ignores its timeout. Witness: a shared fake service whose
outage the test controls, so the truth (when it came back) is known on the same clock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ledgerdrill.measure import StabilityWindow, measure_recovery
from ledgerdrill.probes.base import ProbeSampler
from ledgerdrill.timeline import Instant, Sample, SystemClock, Timeline

INTERVAL_S = 0.1
TIMEOUT_S = 1.0


class Service:
    """Down until ``resume()``. A request sent while it is down is lost: it gets no
    answer and fails at its timeout even if the service comes back meanwhile (a dropped
    connection). Counts the calls in flight."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = self.peak = 0
        self.resumed_at: Instant | None = None

    def resume(self, timeline: Timeline) -> None:
        self.resumed_at = timeline.clock.now()
        self.up.set()


class LossyProbe:
    counts_for_rto = True

    def __init__(self, service: Service, honours_timeout: bool = True) -> None:
        self.name = "svc"
        self.service = service
        self.honours_timeout = honours_timeout

    def twin(self) -> LossyProbe:
        return LossyProbe(self.service, self.honours_timeout)

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        service = self.service
        with service.lock:
            service.in_flight += 1
            service.peak = max(service.peak, service.in_flight)
        try:
            start = timeline.clock.now()
            if service.up.is_set():
                return Sample(self.name, start, True, 0.001, "ok")
            if self.honours_timeout:
                threading.Event().wait(timeout_s)  # lost: no answer, whatever happens
            else:
                service.up.wait()  # ignores its timeout: back only with the service
            took = timeline.clock.now().seconds_since(start)
            return Sample(self.name, start, False, took, "timed out")
        finally:
            with service.lock:
                service.in_flight -= 1


def run_outage(probe: Any, service: Service, outage_s: float) -> tuple[Timeline, ProbeSampler]:
    timeline = Timeline(SystemClock())
    service.up.set()
    sampler = ProbeSampler(probe, timeline, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S)
    sampler.start()
    stop = threading.Event()
    stop.wait(0.5)
    service.up.clear()
    stop.wait(outage_s)
    service.resume(timeline)
    stop.wait(2.5)
    sampler.stop()
    return timeline, sampler


def test_a_probe_waiting_on_its_timeout_still_samples_every_interval() -> None:
    service = Service()
    timeline, sampler = run_outage(LossyProbe(service), service, outage_s=3.0)
    assert sampler.max_in_flight == 11  # ceil(1.0 / 0.1) + 1: covers the timeout
    assert service.peak <= sampler.max_in_flight and sampler.instances <= 11
    samples = timeline.samples("svc")
    assert service.resumed_at is not None
    outage = [s for s in samples if s.at.mono_ns < service.resumed_at.mono_ns and not s.ok]
    assert len(outage) >= 20  # about 30 sends in 3 s; one at a time would give 3
    start = next(s.at for s in samples if not s.ok)
    recovery = measure_recovery(
        samples, start, interval_s=INTERVAL_S, window=StabilityWindow(5, 0.5)
    )
    assert recovery.recovered and recovery.rto_s is not None
    truth = service.resumed_at.seconds_since(start)
    # the truth inside the bar, and the bar about one interval: not the 1 s timeout
    assert recovery.rto_s - recovery.rto_error_s - 0.005 <= truth <= recovery.rto_s
    assert recovery.rto_error_s < 0.5, recovery


def test_calls_that_ignore_their_timeout_are_bounded_and_every_late_tick_fails() -> None:
    service = Service()
    timeline, sampler = run_outage(LossyProbe(service, honours_timeout=False), service, 3.0)
    assert service.peak == sampler.max_in_flight  # every slot taken, never more
    assert sampler.instances <= sampler.max_in_flight
    assert service.resumed_at is not None
    late = [
        s for s in timeline.samples("svc")
        if not s.ok and s.at.mono_ns < service.resumed_at.mono_ns
    ]  # fmt: skip
    assert len(late) >= 15  # about 20 ticks after the slots filled, plus the calls
    assert any("in flight" in s.detail and "has not returned" in s.detail for s in late)
    # the calls come back with the service: sampling resumes, nothing is left waiting
    assert timeline.samples("svc")[-1].ok and sampler.in_flight == 0
    assert not sampler.overdue()


def test_a_probe_without_twin_has_one_sample_in_flight() -> None:
    service = Service()

    class Single(LossyProbe):
        twin = None  # type: ignore[assignment]

    timeline, sampler = run_outage(Single(service), service, outage_s=1.5)
    assert sampler.max_in_flight == 1 and service.peak == 1 and sampler.instances == 1
    assert timeline.samples("svc")[-1].ok


def test_every_instance_is_closed_when_sampling_stops_even_one_that_comes_back_late() -> None:
    service = Service()
    closed: list[int] = []

    class Closing(LossyProbe):
        def twin(self) -> Closing:
            return Closing(self.service, self.honours_timeout)

        def close(self) -> None:
            closed.append(id(self))

    probe = Closing(service, honours_timeout=False)
    timeline = Timeline(SystemClock())
    sampler = ProbeSampler(probe, timeline, interval_s=INTERVAL_S, timeout_s=0.3).start()
    threading.Event().wait(0.6)  # the service is down from the start: calls pile up
    sampler.stop()
    made = sampler.instances
    assert made > 1 and len(closed) < made  # the ones still waiting are not closed yet
    service.resume(timeline)  # they come back now, after sampling ended
    deadline = time.monotonic() + 5.0
    while len(closed) < made and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert len(closed) == made == len(set(closed))  # each instance closed exactly once
