"""Interrupt trials: does a drill leave the sandbox healthy however it is stopped?

Each trial runs one short scenario (`ledgerdrill gameday -k ...`) against the sandbox
and interrupts it at a random moment with SIGINT, SIGTERM, or SIGKILL followed by
`ledgerdrill cleanup`. Then it checks, independently of the harness: every node running
(none frozen or down), the original certificate served, the fault journal empty, no
Locust process left, the cache alive. It prints a table by signal and by the phase the
run was in when signalled (read from its journal at that moment).

Usage: .venv/bin/python benchmarks/interrupt_trials.py [--trials 20] [--seed 1] [--state-dir D]
It runs its own sandbox in a fresh temporary state folder (or in --state-dir), never the
repo's `.ledgerdrill/sandbox` that `make gameday` uses, and takes it down afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.safety.journal import FaultJournal
from ledgerdrill.sandbox import control
from ledgerdrill.sandbox.platform import SandboxPlatform
from ledgerdrill.sandbox.topology import default_topology
from ledgerdrill.targets import SandboxPlatformSettings

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ["node_crash", "node_freeze", "certificate and expired", "cache_loss"]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
TARGET = """
name: interrupt-trials
environment: sandbox
platform: {{kind: sandbox, state_dir: "{state}"}}
tiers: {{finance-core: {{rto: 5m, rpo: 0s}}, portals: {{rto: 4h, rpo: 1h}}}}
default_tier: finance-core
probes: {{catalogue: "{catalogue}", interval: 200ms, steady_state: 1s}}
stability: {{samples: 3, duration: 600ms}}
scenarios:
  node-crash: {{recovery_timeout: 20s, observe_after_recovery: 1s, params: {{node: erp-b}}}}
  node-freeze: {{recovery_timeout: 20s, observe_after_recovery: 1s, params: {{node: erp-c}}}}
  certificate: {{recovery_timeout: 20s, observe_after_recovery: 1s}}
  cache-loss: {{recovery_timeout: 20s, observe_after_recovery: 1s}}
safety:
  allow: {{nodes: ["erp-*", "cache-*"], caches: ["*"], certificates: ["*"]}}
  blast_radius: {{max_nodes: 1, max_zones: 1}}
  runbook_approval_delay: 200ms
"""


def phase_of(journal_dir: Path) -> str:
    """What the run was doing, from its journal: a fault journaled but not yet reverted."""
    statuses = []
    for path in journal_dir.glob("*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                statuses.append(json.loads(line).get("op"))
            except ValueError:
                continue
    if not statuses:
        return "before/after the fault"
    last = statuses[-1]
    return {"intent": "injecting", "injected": "fault in effect"}.get(str(last), f"{last}")


def locust_left(work: Path) -> list[int]:
    """Locust processes the trials' runs started: they run in a folder under ``work``.
    (Other people's Locust runs on the same machine are none of our business: counting
    them made a trial "not clean" while a test suite ran next to the trials.)"""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "-m locust" in cmdline and str(proc.info["cwd"] or "").startswith(str(work)):
            found.append(proc.pid)
    return found


def healthy(platform: SandboxPlatform, fingerprint: str, work: Path) -> list[str]:
    """Problems left behind (empty: clean). Waits up to 30 s for restarts to finish."""
    problems: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        problems = []
        for node in platform.nodes():
            if node.state is not NodeState.RUNNING:
                problems.append(f"node {node.name} {node.state}")
        try:
            if platform.served_certificate().fingerprint_sha256 != fingerprint:
                problems.append("a different certificate is served")
            if not platform.cache_alive():
                problems.append("cache down")
        except Exception as exc:  # the sandbox itself is in trouble
            problems.append(f"sandbox API: {exc}")
        pending = FaultJournal(work / ".ledgerdrill").pending()
        if pending:
            problems.append(f"{len(pending)} fault(s) still journaled")
        if locust_left(work):
            problems.append("Locust left running")
        if not problems:
            return []
        time.sleep(1)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "sandbox.yaml")
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help="sandbox state folder (default: a fresh temporary one, removed afterwards)",
    )  # fmt: skip
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # The target file gives the sandbox's settings; its state folder is not used, so the
    # trials never share (and never disturb) a sandbox someone else is drilling.
    _, settings, _ = control.sandbox_target(args.target)
    with tempfile.TemporaryDirectory(prefix="ledgerdrill-trials-", dir="/tmp") as own:
        os.chmod(own, 0o755)  # PostgreSQL runs as nobody under root: it must reach its folder
        state_dir = (args.state_dir or Path(own) / "sandbox").resolve()
        return _trials(args.trials, rng, settings, state_dir)


def _trials(
    trials: int, rng: random.Random, settings: SandboxPlatformSettings, state_dir: Path
) -> int:
    table: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    dirty: list[str] = []
    with control.running(state_dir, settings, progress=print), \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        work = Path(tmp)
        platform = SandboxPlatform("trials", state_dir, default_topology())
        fingerprint = platform.served_certificate().fingerprint_sha256
        target_file = work / "target.yaml"
        catalogue = REPO / "probes" / "sandbox.yaml"
        target_file.write_text(TARGET.format(state=state_dir, catalogue=catalogue))
        for trial in range(1, trials + 1):
            scenario, sig = rng.choice(SCENARIOS), rng.choice(SIGNALS)
            delay = rng.uniform(1.5, 8.0)  # the fault is in effect for part of this
            run = subprocess.Popen(
                [sys.executable, "-m", "ledgerdrill.cli", "gameday", "--target", str(target_file),
                 "--scenarios", str(REPO / "scenarios"), "--reports-dir", str(work / "reports"),
                 "-k", scenario],
                cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                run.wait(timeout=delay)
                phase = "finished before the signal"
            except subprocess.TimeoutExpired:
                phase = phase_of(work / ".ledgerdrill" / "journal")
                run.send_signal(sig)
                try:
                    run.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    run.kill()
                    run.wait()
                    phase += " (hung after the signal)"
            if sig is signal.SIGKILL:
                time.sleep(1.5)  # the locustfile notices its parent died within ~1 s
                subprocess.run([sys.executable, "-m", "ledgerdrill.cli", "cleanup"], cwd=work,
                               capture_output=True, timeout=120, check=False)  # fmt: skip
            problems = healthy(platform, fingerprint, work)
            cell = table[(sig.name, phase)]
            cell[1] += 1
            cell[0] += not problems
            verdict = "clean" if not problems else "NOT CLEAN: " + "; ".join(problems)
            print(f"trial {trial:3d}: {scenario:24} {sig.name:7} at {delay:5.1f}s "
                  f"({phase}): {verdict}", flush=True)  # fmt: skip
            if problems:
                dirty.append(f"trial {trial}: {verdict}")
                for node in platform.nodes():  # repair, so the next trial starts clean
                    platform.restore_node(node.name)
    print(f"\n{'signal':8} {'phase when signalled':36} {'clean':>7}")
    for (sig_name, phase), (clean, total) in sorted(table.items()):
        print(f"{sig_name:8} {phase:36} {clean:3d}/{total:<3d}")
    total = sum(t for _, t in table.values())
    clean = sum(c for c, _ in table.values())
    print(f"\n{clean} of {total} trials left the sandbox fully healthy")
    for line in dirty:
        print(f"  {line}")
    return 0 if clean == total else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LedgerdrillError as exc:  # a user's mistake (target file, sandbox): one line
        sys.exit(f"{Path(__file__).name}: {exc}")
