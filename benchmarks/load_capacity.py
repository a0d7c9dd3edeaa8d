"""What one Locust process with the finance flows sustains against the sandbox, and what
the harness's own measurement costs it.

The same capacity profile runs twice in one go: alone, then with every default probe
and the ledger canary running as in a drill. The ratio of the two (throughput, p95)
is the harness's overhead on the platform it measures.

Usage: .venv/bin/python benchmarks/load_capacity.py [--users 20] [--seconds 20]
It starts the sandbox if it is not running (and takes it down again afterwards).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.load.model import LoadResult
from ledgerdrill.load.phases import summarise
from ledgerdrill.load.runner import LoadRun
from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.probes.base import ProbeSampler
from ledgerdrill.probes.catalogue import build_canary, build_probes, load_catalogue
from ledgerdrill.timeline import SystemClock, Timeline

REPO = Path(__file__).resolve().parents[1]
PROFILE = """
name: capacity
think_time: 20ms
mix: {{accountant: 4, treasury: 2, controller: 1, bank_feed: 2}}
stages:
  - {{phase: baseline, for: 2s, users: {users}, spawn_rate: {users}}}
  - {{phase: baseline, for: {rest}s, users: {users}, spawn_rate: {users}}}
"""


def run_load(status: dict[str, str], profile: Path, out: Path, seconds: int) -> LoadResult:
    run = LoadRun(
        profile,
        url=status["entry_url"],
        database=status["database"],
        login=status["login"],
        password=status["password"],
        ca_bundle=status["ca_bundle"],
        out_dir=out,
        locustfile=REPO / "loadprofiles" / "locustfile.py",
    )
    with run:
        run.wait(seconds + 30)
    return run.result()


def figures(result: LoadResult) -> tuple[float, float | None, float]:
    """(steady requests/s, p95 ms, error rate), leaving out the ramp and the last second."""
    steady = result.seconds[3:-1]
    rps = sum(s.requests for s in steady) / max(1, len(steady))
    whole = summarise(result, None, None).phase("baseline")
    return rps, whole.p95_ms, whole.error_rate or 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "sandbox.yaml")
    args = parser.parse_args()
    target, settings, state_dir = control.sandbox_target(args.target)
    if not target.probes.catalogue:
        sys.exit(f"{args.target}: probes.catalogue is not set (this benchmark needs one)")
    with control.running(state_dir, settings, progress=print):
        platform = SandboxPlatform("capacity", state_dir, default_topology())
        status = platform.status()
        catalogue_path = target.resolve_path(target.probes.catalogue)
        catalogue = load_catalogue(catalogue_path)
        facts = platform.probe_facts()
        with tempfile.TemporaryDirectory() as tmp:
            profile = Path(tmp) / "capacity.yaml"
            profile.write_text(PROFILE.format(users=args.users, rest=args.seconds - 2))
            print(f"load alone: {args.users} users for {args.seconds}s ...", flush=True)
            alone = run_load(status, profile, Path(tmp) / "alone", args.seconds)
            print("load with every default probe and the ledger canary ...", flush=True)
            timeline = Timeline(SystemClock())
            probes = build_probes(catalogue, facts, catalogue_path)
            samplers = [
                ProbeSampler(p, timeline, interval_s=getattr(p, "interval_s", None)
                             or target.probes.interval,
                             timeout_s=getattr(p, "timeout_s", None)).start()
                for p in probes
            ]  # fmt: skip
            canary = build_canary(catalogue, facts, catalogue_path, "capacity")
            if canary is not None:
                canary.start(timeline)
            try:
                measured = run_load(status, profile, Path(tmp) / "measured", args.seconds)
            finally:
                for sampler in samplers:
                    sampler.stop()
                if canary is not None:
                    canary.stop()
    print(f"\n{'':28} {'req/s':>8} {'p95 ms':>8} {'errors':>7} {'Locust CPU':>11}")
    for label, result in (("load alone", alone), ("with probes + canary", measured)):
        rps, p95, errors = figures(result)
        cpu = (result.cpu_s or 0) / max(1.0, result.duration_s)
        print(f"{label:28} {rps:8.1f} {p95 or float('nan'):8.0f} {errors:7.2%} {cpu:10.0%}")
    (rps_a, p95_a, _), (rps_m, p95_m, _) = figures(alone), figures(measured)
    print(f"\nharness overhead: throughput x{rps_m / rps_a:.3f}"
          + (f", p95 x{p95_m / p95_a:.3f}" if p95_a and p95_m else "")
          + f"; Locust start-up {alone.startup_s or 0:.2f}s")  # fmt: skip
    print(f"Locust totals: {alone.requests} = JSON {alone.locust_requests} (alone), "
          f"{measured.requests} = JSON {measured.locust_requests} (measured)")  # fmt: skip
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LedgerdrillError as exc:  # a user's mistake (target file, sandbox): one line
        sys.exit(f"{Path(__file__).name}: {exc}")
