"""How accurately do the probes measure an outage? A ground truth against the sandbox.

``ScriptedOutage`` hangs every ERP replica (SIGSTOP) for exactly D seconds and then
resumes them (SIGCONT); it records when the pause and the resume really happened. For
each outage length and probe interval this prints the true outage, the measured
downtime and RTO, and the error. Two probes watch each case:

* ``replica`` -- HTTP ``/web/health`` on one replica directly: the probe's own accuracy
  (goal: |measured - true| <= one interval + 50 ms);
* ``entry``   -- the same through Traefik, what users see: it adds Traefik's health-check
  lag (a backend marked down is only marked up again by its next check).

Usage: .venv/bin/python benchmarks/accuracy.py [--durations 1,2.5,5] [--intervals 0.05,0.1,0.2]
       [--http-client lean|httpx]
It starts the sandbox if it is not running (and takes it down again afterwards).

``--through-drill N [--seed S]``: N real drills instead, outage and probe interval drawn
at random, against an independent witness client (``drill_truth.py``); last line
``rto truth inside bar: N/M (goal >= 95%) PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import drill_truth
from old_http import LEAN, HttpxClient, use_http_client

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.faults import ScriptedOutage
from ledgerdrill.measure import StabilityWindow, measure_recovery
from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.probes.base import ProbeSampler
from ledgerdrill.probes.http_tls import HttpProbe
from ledgerdrill.timeline import Instant, SystemClock, Timeline

REPO = Path(__file__).resolve().parents[1]
SLACK_S = 0.05


Row = dict[str, float | str]


def run_case(platform: SandboxPlatform, duration_s: float, interval_s: float) -> list[Row]:
    status = platform.status()
    replica_port = status["erp"]["replicas"][0]["port"]
    probes = [
        HttpProbe("replica", f"http://127.0.0.1:{replica_port}/web/health"),
        HttpProbe("entry", f"{status['entry_url']}/web/health", ca_bundle=status["ca_bundle"]),
    ]
    timeline = Timeline(SystemClock())
    samplers = [ProbeSampler(p, timeline, interval_s=interval_s).start() for p in probes]
    time.sleep(1.0)  # steady state
    fault = ScriptedOutage(platform, duration_s)
    t_inject = timeline.clock.now()
    fault.inject()
    while fault.true_outage_s is None:
        time.sleep(0.01)
    time.sleep(3.0)  # observe the recovery and a stability window
    for sampler in samplers:
        sampler.stop()
    fault.revert()
    # the truth starts when every replica was stopped, not when inject() was called
    assert fault.paused_ns is not None
    truth_start = Instant(fault.paused_ns, t_inject.wall)
    true_s = fault.true_outage_s or 0.0
    rows: list[dict[str, float | str]] = []
    for probe in probes:
        recovery = measure_recovery(
            timeline.samples(probe.name), truth_start, interval_s=interval_s,
            window=StabilityWindow(3, 0.3), end=timeline.clock.now(),
        )  # fmt: skip
        rto = recovery.rto_s if recovery.rto_s is not None else float("nan")
        rows.append({
            "probe": probe.name, "duration": duration_s, "interval": interval_s, "true": true_s,
            "downtime": recovery.downtime_s, "rto": rto,
            "err_downtime": recovery.downtime_s - true_s, "err_rto": rto - true_s,
        })  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", default="1,2.5,5")
    parser.add_argument("--intervals", default="0.05,0.1,0.2")
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "sandbox.yaml")
    parser.add_argument(
        "--http-client",
        choices=("lean", "httpx"),
        default="lean",
        help="httpx: the probes' client before issue 38, to compare",
    )
    parser.add_argument(
        "--through-drill",
        type=int,
        default=0,
        metavar="N",
        help="N real drills against an independent witness instead",
    )
    parser.add_argument("--seed", type=int, default=None, help="with --through-drill")
    args = parser.parse_args()
    if args.through_drill:
        seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000
        return drill_truth.main(args.through_drill, seed)
    use_http_client(HttpxClient if args.http_client == "httpx" else LEAN)
    durations = [float(x) for x in args.durations.split(",")]
    intervals = [float(x) for x in args.intervals.split(",")]
    _, settings, state_dir = control.sandbox_target(args.target)
    platform = SandboxPlatform("accuracy", state_dir, default_topology())
    rows: list[dict[str, float | str]] = []
    with control.running(state_dir, settings, progress=print):
        for duration in durations:
            for interval in intervals:
                print(f"  outage {duration:g}s at interval {interval * 1000:.0f}ms ...", flush=True)
                rows.extend(run_case(platform, duration, interval))
    print()
    print(f"{'probe':8} {'outage':>7} {'interval':>8} {'true s':>7} {'downtime':>9} {'RTO':>7} "
          f"{'err(down)':>9} {'err(RTO)':>9}  within interval+50ms")  # fmt: skip
    misses = 0
    for r in rows:
        limit = float(r["interval"]) + SLACK_S
        ok = abs(float(r["err_downtime"])) <= limit and abs(float(r["err_rto"])) <= limit
        misses += r["probe"] == "replica" and not ok
        print(f"{r['probe']:8} {float(r['duration']):7.2f} {float(r['interval']) * 1000:6.0f}ms "
              f"{float(r['true']):7.3f} {float(r['downtime']):9.3f} {float(r['rto']):7.3f} "
              f"{float(r['err_downtime']):+9.3f} {float(r['err_rto']):+9.3f}  "
              f"{'yes' if ok else 'NO'}")  # fmt: skip
    replica_cases = sum(1 for r in rows if r["probe"] == "replica")
    print(f"\nreplica probe within one interval + 50 ms: {replica_cases - misses}/{replica_cases}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LedgerdrillError as exc:  # a user's mistake (target file, sandbox): one line
        sys.exit(f"{Path(__file__).name}: {exc}")
