"""The drill reads the users' record while the load writes it: every whole line once, a
line still being written never (read from a file appended to as Locust's flusher does)."""

from __future__ import annotations

import json
from pathlib import Path

from ledgerdrill.load.collect import REQUESTS_FILE, collect_requests
from ledgerdrill.load.runner import LoadRun

PROFILE = """
name: record-test
mix: {controller: 1}
stages:
  - {phase: baseline, for: 2s, users: 1, spawn_rate: 1}
"""


def row(start: float, end: float | None, outcome: str | None) -> str:
    return json.dumps({"s": start, "e": end, "o": outcome, "st": 0, "p": 1}) + "\n"


def test_the_record_is_read_as_it_grows_and_a_torn_line_waits(tmp_path: Path) -> None:
    (tmp_path / "record-test.yaml").write_text(PROFILE)
    (tmp_path / "locustfile.py").write_text("")
    run = LoadRun(tmp_path / "record-test.yaml", url="http://127.0.0.1:1", database="d",
                  login="l", password="p", ca_bundle=None, out_dir=tmp_path / "out")  # fmt: skip
    assert run.requests_so_far() == []  # nothing written yet: nothing, not an error
    record = tmp_path / "out" / REQUESTS_FILE
    record.parent.mkdir()
    first = row(10.0, 10.2, "ok") + row(10.1, 10.5, "error")
    torn = row(10.3, 10.4, "ok")
    record.write_text(first + torn[:20])  # the flusher is mid-line
    assert [(r.start, r.outcome) for r in run.requests_so_far()] == [(10.0, "ok"), (10.1, "error")]
    with record.open("a") as handle:
        handle.write(torn[20:] + row(9.9, None, None))
    seen = run.requests_so_far()
    assert [(r.start, r.outcome) for r in seen] == [
        (9.9, None), (10.0, "ok"), (10.1, "error"), (10.3, "ok"),
    ]  # fmt: skip
    # the same rows as reading the whole file at the end
    assert seen == collect_requests(tmp_path / "out")
    assert run.requests_so_far() == seen  # nothing new: the same, nothing twice
