"""What the sampler itself costs: ten probes that do nothing, sampled at 5 Hz.

Every figure of the probes' CPU (``probe_overhead.py``) includes the sampler's own work
per sample -- scheduling the call on the probe's worker, the timeline write, the in-flight
bookkeeping. This measures that part alone, so a cut in it can be told from noise in the
probes. Runs twice; prints CPU of this process per sample and in % of one core.

Usage: .venv/bin/python benchmarks/sampler_overhead.py [--probes 10] [--hz 5] [--seconds 10]
Last line: ``sampler cpu, 10 no-op probes at 5 Hz: X% of a core (goal <= 1%) PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import os
import time

from ledgerdrill.probes.base import ProbeSampler
from ledgerdrill.timeline import Sample, SystemClock, Timeline

GOAL_PERCENT = 1.0  # of the 5% for the whole catalogue, the sampler's share


class NoOp:
    counts_for_rto = True

    def __init__(self, name: str) -> None:
        self.name = name

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        return Sample(self.name, timeline.clock.now(), True, 0.0, "ok")

    def twin(self) -> NoOp:
        return NoOp(self.name)


def run(probes: int, hz: float, seconds: float) -> tuple[float, int]:
    """(CPU share of one core, samples taken)."""
    timeline = Timeline(SystemClock())
    samplers = [ProbeSampler(NoOp(f"p{i}"), timeline, interval_s=1 / hz) for i in range(probes)]
    cpu0, wall0 = os.times(), time.monotonic()
    for sampler in samplers:
        sampler.start()
    time.sleep(seconds)
    for sampler in samplers:
        sampler.stop()
    cpu1, wall1 = os.times(), time.monotonic()
    busy = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / (wall1 - wall0)
    return busy, sum(s.count for s in samplers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--hz", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    shares = []
    for _ in range(2):
        share, samples = run(args.probes, args.hz, args.seconds)
        shares.append(share)
        per_ms = share * args.seconds / max(samples, 1) * 1000
        print(f"{args.probes} no-op probes at {args.hz:g} Hz: {share * 100:.2f}% of a core,"
              f" {samples} samples, {per_ms:.3f} ms of CPU per sample")  # fmt: skip
    mean = sum(shares) / len(shares) * 100
    verdict = "PASS" if mean <= GOAL_PERCENT else "FAIL"
    print(f"sampler cpu, {args.probes} no-op probes at {args.hz:g} Hz: {mean:.2f}% of a core"
          f" (goal <= {GOAL_PERCENT:g}%) {verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
