"""The per-request record the users' figures are built from: read tolerantly, and --
with real Locust against a server that never answers -- a hung request is in it as
never answered, not silently dropped when Locust stops its users."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerdrill.load.collect import read_requests
from ledgerdrill.load.runner import LoadRun

REPO = Path(__file__).resolve().parents[2]
PROFILE = """
name: hang-test
think_time: 200ms
mix: {accountant: 1}
stages:
  - {phase: baseline, for: 30s, users: 2, spawn_rate: 2}
"""


def test_read_requests_skips_torn_and_foreign_lines() -> None:
    text = "\n".join(
        [
            '{"s": 10.0, "e": 10.5, "o": "ok"}',
            '{"s": 11.0, "e": null, "o": null}',
            '{"s": 12.0, "e": 12.1, "o": "teapot"}',  # not an outcome we write
            '{"s": 13.0, "e": 12.0, "o": "ok"}',  # answered before sent: refused
            '{"s": 14.0, "e": 14.2, "o": "unans',  # torn by a kill mid-write
        ]
    )
    found = read_requests(text)
    assert [(r.start, r.end, r.outcome) for r in found] == [
        (10.0, 10.5, "ok"),
        (11.0, None, None),
    ]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and reads, never answers (a frozen backend)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


def test_requests_still_hanging_when_locust_stops_are_recorded_as_never_answered(
    silent_server: int, tmp_path: Path
) -> None:
    profile = tmp_path / "hang-test.yaml"
    profile.write_text(PROFILE)
    run = LoadRun(
        profile, url=f"http://127.0.0.1:{silent_server}", database="db", login="u",
        password="p", ca_bundle=None, out_dir=tmp_path / "out", max_duration_s=20,
        locustfile=REPO / "loadprofiles" / "locustfile.py",
    )  # fmt: skip
    started = tmp_path / "out" / "seconds.jsonl"  # written at Locust's test start
    with run:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not started.exists():
            time.sleep(0.2)
        assert started.exists(), "Locust did not start"
        time.sleep(2.0)  # both users are waiting on their login by now
    requests = run.user_requests()
    assert len(requests) == 2, requests  # one login per user, neither answered
    assert all(r.end is None and r.outcome is None for r in requests)
    result = run.result()
    assert result.locust_requests in (0, None)  # Locust itself never heard of them


RAMP_DOWN = """
name: ramp-down-test
think_time: 200ms
mix: {accountant: 1}
stages:
  - {phase: baseline, for: 3s, users: 3, spawn_rate: 10}
  - {phase: baseline, for: 30s, users: 1, spawn_rate: 10}
"""


def test_users_stopped_by_a_ramp_down_abandon_their_request_and_are_not_stuck(
    silent_server: int, tmp_path: Path
) -> None:
    """Seen in CI: a ramp-down between stages stopped a user waiting 1 ms on its answer;
    recorded as never answered, it read as a user stuck to the end of the drill and
    failed a healthy failover. Stopped by the load itself, its wait ended then."""
    profile = tmp_path / "ramp-down-test.yaml"
    profile.write_text(RAMP_DOWN)
    run = LoadRun(
        profile, url=f"http://127.0.0.1:{silent_server}", database="db", login="u",
        password="p", ca_bundle=None, out_dir=tmp_path / "out", max_duration_s=30,
        locustfile=REPO / "loadprofiles" / "locustfile.py",
    )  # fmt: skip
    started = tmp_path / "out" / "seconds.jsonl"
    with run:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not started.exists():
            time.sleep(0.2)
        assert started.exists(), "Locust did not start"
        time.sleep(6.0)  # past the ramp-down at 3 s
    requests = run.user_requests()
    abandoned = [r for r in requests if r.outcome == "abandoned"]
    never = [r for r in requests if r.end is None]
    assert len(abandoned) == 2 and len(never) == 1, requests
    for request in abandoned:  # it waited from its login to the ramp-down, ~3 s
        assert request.end is not None and 1.5 < request.end - request.start < 6.0, request
