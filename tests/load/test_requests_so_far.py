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


def test_a_request_still_waiting_is_seen_before_it_has_a_row(tmp_path: Path) -> None:
    # the hardened node-freeze's CI failure: a POST hung 2 s on the frozen replica had no
    # row until its 504, so the drill saw the users back while one of them was stuck
    (tmp_path / "record-test.yaml").write_text(PROFILE)
    (tmp_path / "locustfile.py").write_text("")
    run = LoadRun(tmp_path / "record-test.yaml", url="http://127.0.0.1:1", database="d",
                  login="l", password="p", ca_bundle=None, out_dir=tmp_path / "out")  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    (out / REQUESTS_FILE).write_text(row(10.0, 10.1, "ok"))
    (out / f"{REQUESTS_FILE}.waiting.41").write_text("[10.05]")
    (out / f"{REQUESTS_FILE}.waiting.42").write_text("[9.5, 10.2]")
    (out / f"{REQUESTS_FILE}.waiting.43.tmp").write_text("[1.0]")  # being written: not yet
    seen = run.requests_so_far()
    assert [(r.start, r.end) for r in seen] == [
        (9.5, None), (10.0, 10.1), (10.05, None), (10.2, None),
    ]  # fmt: skip
    # the next flush: 9.5 ended (its row), the snapshot no longer holds it -- never twice
    with (out / REQUESTS_FILE).open("a") as handle:
        handle.write(row(9.5, 10.6, "error"))
    (out / f"{REQUESTS_FILE}.waiting.42").write_text("[10.2]")
    assert [(r.start, r.outcome) for r in run.requests_so_far()] == [
        (9.5, "error"), (10.0, "ok"), (10.05, None), (10.2, None),
    ]  # fmt: skip
