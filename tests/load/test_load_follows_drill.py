"""Real Locust following a drill's phases: the stage switches when the harness says the
phase changed -- in one process, and on every worker of a distributed run (master + 2).

The witness is the per-request record each Locust process writes (stage and process of
every request) together with what a small JSON-RPC server saw: logins arrive only once
the reconnect-storm stage runs.
"""

from __future__ import annotations

import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.load.collect import collect_requests
from ledgerdrill.load.runner import LoadRun
from ledgerdrill.measure.users import UserRequest

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadprofiles" / "locustfile.py"
# baseline: controllers only (no login after each user's first); after the recovery: a
# reconnect storm, every iteration a login
PROFILE = """
name: follow-test
think_time: 100ms
mix: {controller: 1}
stages:
  - {phase: baseline, for: 2s, users: 4, spawn_rate: 4}
  - {phase: post-recovery, for: 20s, users: 4, spawn_rate: 4, mix: {login: 1}}
"""
def wait_for_rows(run: LoadRun, predicate: Any, timeout_s: float = 30.0) -> list[UserRequest]:
    """Poll the per-request record (flushed every second) until ``predicate(rows)``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = collect_requests(run.out_dir)
        if predicate(rows):
            return rows
        time.sleep(0.3)
    raise AssertionError(f"not seen within {timeout_s:g}s: {predicate.__doc__}")


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "master-and-2-workers"])
def test_every_locust_process_switches_stage_when_the_drill_changes_phase(
    erp: ThreadingHTTPServer, tmp_path: Path, workers: int
) -> None:
    profile = tmp_path / "follow-test.yaml"
    profile.write_text(PROFILE)
    run = LoadRun(
        profile, url=f"http://127.0.0.1:{erp.server_address[1]}", database="db", login="u",
        password="p", ca_bundle=None, out_dir=tmp_path / "out", max_duration_s=90,
        locustfile=LOCUSTFILE, workers=workers, follow_drill=True,
    )  # fmt: skip
    with run:

        def baseline_running(rows: list[UserRequest]) -> bool:
            """requests of the baseline stage from every process that runs users"""
            return len({r.process for r in rows if r.stage == 0}) == max(workers, 1)

        wait_for_rows(run, baseline_running)
        # well past the baseline stage's 2 s: on its own the profile would have moved on
        time.sleep(3.0)
        before = collect_requests(run.out_dir)
        assert before and all(r.stage == 0 for r in before), "a stage ran before its phase"
        switched_at = time.time()
        run.enter_phase("post-recovery")

        def storm_everywhere(rows: list[UserRequest]) -> bool:
            """a dozen requests of the post-recovery stage, from every process with users"""
            storm = [r for r in rows if r.stage == 1]
            return len(storm) >= 12 and len({r.process for r in storm}) == max(workers, 1)

        rows = wait_for_rows(run, storm_everywhere)
    storm = [r for r in rows if r.stage == 1]
    # the storm began after the phase changed, never before
    assert min(r.start for r in storm) >= switched_at - 1.0
    assert all(r.end is None or r.end >= switched_at for r in storm)
    logins: list[float] = erp.logins  # type: ignore[attr-defined]
    # before the switch: one login per user (4); after: the storm logs in again and again
    assert len([t for t in logins if t < switched_at]) == 4
    assert len([t for t in logins if t >= switched_at]) >= 8
    if workers:
        # the master's shape told each worker (the workers' logs say it, too)
        for index in range(workers):
            log = (run.out_dir / f"worker-{index}.log").read_text()
            assert "stage 1 (post-recovery)" in log, log[-2000:]
    assert run.phase_began("post-recovery") == pytest.approx(switched_at, abs=1.0)

