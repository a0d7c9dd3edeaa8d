"""What one Locust process with the finance flows sustains against a running sandbox.

Usage: ``python benchmarks/load_capacity.py <sandbox state dir> [users] [seconds]``
(start one with ``ledgerdrill sandbox up``). Prints requests/s, error rate, p95, Locust's
start-up time and CPU use. Not yet: the harness-overhead ratio (with/without probes and
canary) the issue asks for; that needs the drill wiring.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ledgerdrill.load.phases import summarise
from ledgerdrill.load.runner import LoadRun
from ledgerdrill.sandbox import control

PROFILE = """
name: capacity
think_time: 20ms
mix: {{accountant: 4, treasury: 2, controller: 1, bank_feed: 2}}
stages:
  - {{until: 2s, users: {users}, spawn_rate: {users}}}
  - {{until: {seconds}s, users: {users}, spawn_rate: {users}}}
"""


def main() -> None:
    state_dir = Path(sys.argv[1])
    users = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    status = control.read_status(state_dir)
    if status is None:
        sys.exit(f"no sandbox runs in {state_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "capacity.yaml"
        profile.write_text(PROFILE.format(users=users, seconds=seconds))
        run = LoadRun(
            profile,
            url=status["entry_url"],
            database=status["database"],
            login=status["login"],
            password=status["password"],
            ca_bundle=status["ca_bundle"],
            out_dir=Path(tmp) / "out",
            locustfile=Path(__file__).resolve().parents[1] / "loadprofiles" / "locustfile.py",
        )
        with run:
            run.wait(seconds + 30)
        result = run.result()
    whole = summarise(result, None, None).phase("baseline")
    steady = result.seconds[3:-1]
    rps = sum(s.requests for s in steady) / max(1, len(steady))
    print(f"users {users}, {result.duration_s:g} s, ended by {result.ended_by}")
    print(
        f"requests {result.requests} (Locust JSON {result.locust_requests}),"
        f" failures {result.failures}"
    )
    print(
        f"steady requests/s {rps:.1f}; p50 {whole.p50_ms} ms,"
        f" p95 {whole.p95_ms} ms, p99 {whole.p99_ms} ms"
    )
    print(f"Locust start-up {result.startup_s:.2f} s, CPU {result.cpu_s} s "
          f"({(result.cpu_s or 0) / max(1.0, result.duration_s):.0%} of one core)")  # fmt: skip


if __name__ == "__main__":
    main()
