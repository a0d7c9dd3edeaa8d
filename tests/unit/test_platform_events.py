from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ledgerdrill.platform_events import EventLog
from ledgerdrill.timeline import SystemClock, Timeline


def test_events_from_another_process_land_on_the_same_clock(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    timeline = Timeline(SystemClock())
    before = timeline.clock.now()
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from ledgerdrill.platform_events import EventLog;"
         "EventLog(Path(sys.argv[1])).append('ha.promoted', 'db-b', {'timeline': 2})",
         str(log.path)],
        check=True,
    )  # fmt: skip
    after = timeline.clock.now()
    with open(log.path, "a") as torn:
        torn.write('{"mono_ns": 1, "wal')  # a writer killed mid-line is skipped
    events = log.read(since=before)
    assert [(e.kind, e.name, e.attributes) for e in events] == [
        ("ha.promoted", "db-b", {"timeline": 2})
    ]
    assert before.mono_ns <= events[0].at.mono_ns <= after.mono_ns
    timeline.add_event(events[0])
    assert timeline.first_event("ha.promoted") == events[0]
    assert log.read(since=after) == []
