from __future__ import annotations

import threading
from pathlib import Path

from ledgerdrill.timeline import FakeClock, Sample, SystemClock, Timeline


def test_events_and_samples_are_ordered_and_queryable() -> None:
    clock = FakeClock()
    timeline = Timeline(clock, "s")
    first = clock.now()
    clock.advance(1)
    timeline.event("fault.injected", "node-crash", node="a")
    timeline.add_sample(Sample("p", clock.now(), True, 0.01))
    timeline.add_sample(Sample("p", first, False, 0.02, "down"))  # arrives late, sorted in
    clock.advance(1)
    timeline.add_sample(Sample("q", clock.now(), True, 0.01))
    assert [s.ok for s in timeline.samples("p")] == [False, True]
    assert len(timeline.samples(start=first.plus(0.5))) == 2
    assert timeline.first_event("fault.injected").attributes == {"node": "a"}  # type: ignore[union-attr]
    assert timeline.probes() == ["p", "q"]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    clock = FakeClock()
    timeline = Timeline(clock, "zone-outage")
    timeline.event("runbook.done", "promote", duration_s=1.5)
    clock.advance(0.2)
    timeline.add_sample(Sample("erp", clock.now(), False, 0.3, "503"))
    timeline.to_jsonl(tmp_path / "t.jsonl")
    back = Timeline.from_jsonl(tmp_path / "t.jsonl")
    assert back.scenario == "zone-outage"
    assert back.samples("erp") == timeline.samples("erp")
    assert back.events()[0].attributes == {"duration_s": 1.5}


def test_thread_safe_appends() -> None:
    timeline = Timeline(SystemClock())

    def work(name: str) -> None:
        for _ in range(500):
            timeline.add_sample(Sample(name, timeline.clock.now(), True, 0.0))

    threads = [threading.Thread(target=work, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(timeline.samples()) == 2000


def test_system_clock_wall_follows_monotonic() -> None:
    clock = SystemClock()
    a, b = clock.now(), clock.now()
    assert b.mono_ns >= a.mono_ns
    assert b.wall >= a.wall
