"""Where do the probes' CPU seconds go? A CPU profile of the harness side of sampling.

Runs the default sandbox catalogue's probes (every one at --hz, as the issue's goal
states it) for --seconds under yappi with the CPU clock, across all threads (cProfile
sees only the calling thread), and prints:

- the harness process's CPU in % of one core, measured by the OS (not by the profiler);
- CPU by area (TLS, JSON, HTTP client, psycopg, threads and locks, the timeline,
  logging, the probes' own code), each function's own time counted once;
- the top functions by own CPU time.

Last line: ``probe cpu at <hz> Hz under the profiler: X% of a core`` -- a profiler's
overhead inflates it; ``benchmarks/probe_overhead.py`` gives the unprofiled figure.
Usage: .venv/bin/python benchmarks/probe_profile.py [--hz 5] [--seconds 20] [--top 25]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil
import yappi  # type: ignore[import-untyped]

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.probes.base import ProbeSampler
from ledgerdrill.probes.catalogue import build_probes, load_catalogue
from ledgerdrill.timeline import SystemClock, Timeline

REPO = Path(__file__).resolve().parents[1]
# a function's module path -> the area it belongs to (first match wins)
AREAS = (
    ("ssl", "TLS (handshakes, record layer)"),
    ("json", "JSON encode/decode"),
    ("httpx", "HTTP client (httpx/httpcore)"),
    ("httpcore", "HTTP client (httpx/httpcore)"),
    ("h11", "HTTP client (httpx/httpcore)"),
    ("psycopg", "PostgreSQL client (psycopg)"),
    ("redis", "Redis client"),
    ("socket", "sockets"),
    ("selectors", "sockets"),
    ("threading", "threads, locks, waits"),
    ("queue", "threads, locks, waits"),
    ("concurrent", "threads, locks, waits"),
    ("ledgerdrill/timeline", "the timeline"),
    ("logging", "logging"),
    ("ledgerdrill/probes", "the probes' own code"),
)


def area(module: str) -> str:
    for needle, name in AREAS:
        if needle in module:
            return name
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hz", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "sandbox.yaml")
    args = parser.parse_args()
    target, settings, state_dir = control.sandbox_target(args.target)
    if not target.probes.catalogue:
        sys.exit(f"{args.target}: probes.catalogue is not set (this benchmark needs one)")
    with control.running(state_dir, settings, progress=print):
        platform = SandboxPlatform("profile", state_dir, default_topology())
        catalogue_path = target.resolve_path(target.probes.catalogue)
        probes = build_probes(load_catalogue(catalogue_path), platform.probe_facts(),
                              catalogue_path)  # fmt: skip
        me = psutil.Process()
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True, profile_threads=True)
        cpu0, t0 = me.cpu_times(), time.monotonic()
        timeline = Timeline(SystemClock())
        samplers = [ProbeSampler(p, timeline, interval_s=1.0 / args.hz).start() for p in probes]
        time.sleep(args.seconds)
        for sampler in samplers:
            sampler.stop()
        elapsed = time.monotonic() - t0
        cpu1 = me.cpu_times()
        yappi.stop()
        stats = yappi.get_func_stats()
        samples = len(timeline.samples())
    busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed * 100
    own: dict[str, float] = defaultdict(float)
    rows = []
    for stat in stats:
        own[area(stat.module)] += stat.tsub
        rows.append((stat.tsub, stat.ncall, f"{Path(stat.module).name}:{stat.lineno} {stat.name}"))
    total = sum(own.values()) or 1.0
    print(f"\n{len(probes)} probes at {args.hz:g} Hz for {elapsed:.1f}s: {samples} samples, "
          f"harness {busy:.1f}% of one core (OS-measured, profiler included)")  # fmt: skip
    print(f"\n{'area':34} {'own CPU s':>9} {'share':>6}")
    for name, seconds in sorted(own.items(), key=lambda item: -item[1]):
        print(f"{name:34} {seconds:9.3f} {seconds / total:6.1%}")
    print(f"\ntop {args.top} functions by own CPU time:")
    print(f"{'own s':>7} {'calls':>8}  function")
    for tsub, ncall, name in sorted(rows, reverse=True)[: args.top]:
        print(f"{tsub:7.3f} {ncall:8d}  {name}")
    print(f"probe cpu at {args.hz:g} Hz under the profiler: {busy:.1f}% of a core")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LedgerdrillError as exc:  # a user's mistake (target file, sandbox): one line
        sys.exit(f"{Path(__file__).name}: {exc}")
