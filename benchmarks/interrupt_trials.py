"""Interrupt trials: is the platform back as it was found, however a drill is stopped?

Each trial runs one scenario of the game day (`ledgerdrill gameday -k ...`) against a
sandbox of its own and stops it in a chosen phase -- before the fault, with the fault
in effect, while a runbook step waits for approval, while it runs (inside a restore),
between its journaled stages, while reverting or observing -- with SIGINT, SIGTERM, or
SIGKILL followed by `ledgerdrill cleanup`; or lets it finish ("none"). The phase is
read from outside: the run's fault journal and its progress lines. Runbook steps are
approved through an approvals file the trial writes, so a trial can hold a step in
its approval wait for as long as it likes.

After each trial three witnesses judge, none of them the drill's own verdict:

1. the platform's shape, read before the trial and after it (one primary, a
   streaming synchronous standby and DR replica, the ERP on the HA cluster, nodes,
   certificate, release, cache), waited for up to --settle seconds;
2. ``ledgerdrill.platforms.sandbox.witness``: processes by the OS, roles and replication by SQL
   on each server, the ERP's connections as PostgreSQL sees them, a balanced entry
   posted over verified HTTPS and found by SQL, the ledger balanced and gapless by SQL;
3. the fault journal empty and no Locust process left;
and a trial left to finish (signal "none") must have exited 0: its drill PASSed.

It prints one line per trial, a table by scenario x signal x phase, and last:
`trials back at baseline: N/M (goal M/M) PASS|FAIL`.

Usage:
  .venv/bin/python benchmarks/interrupt_trials.py --trials 100 --seed 1
  .venv/bin/python benchmarks/interrupt_trials.py --trials 100 --seed 1 \\
      --resume trials.jsonl --chunk 20     # again and again until all 100 are in the file
  .venv/bin/python benchmarks/interrupt_trials.py --case zone-outage-standby:none:- \\
      --case region-outage:SIGKILL:awaiting-approval
A case is scenario:signal:phase (phase "-" for a run left to finish). Scenarios:
see SCENARIOS below; phases: PHASES. It runs its own sandbox in a fresh temporary
state folder (or --state-dir), never the repo's `.ledgerdrill/sandbox`.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.platforms.sandbox.witness import SandboxWitness
from ledgerdrill.platforms.shape import await_baseline, read_shape
from ledgerdrill.safety.journal import FaultJournal
from ledgerdrill.targets import SandboxPlatformSettings

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scenario:
    select: str  # pytest -k expression
    runbook: bool = False  # it runs a runbook step (approval, stages)
    stages: bool = False  # its runbook step journals stages (a restore, then a switch)
    zone_of: str = ""  # zone-outage: the zone of this database role, read at the trial


SCENARIOS = {
    "node-crash": Scenario("node_crash"),
    "node-freeze": Scenario("node_freeze"),
    "zone-outage-primary": Scenario("zone_outage", zone_of="primary"),
    "zone-outage-standby": Scenario("zone_outage", zone_of="sync-standby"),
    "database-failover-crash": Scenario("database_failover and crash"),
    "database-failover-switchover": Scenario("database_failover and switchover"),
    "database-corruption-pitr": Scenario("database_corruption", runbook=True, stages=True),
    "region-outage": Scenario("region_outage", runbook=True),
    "certificate-expired": Scenario("certificate and expired"),
    "cache-loss": Scenario("cache_loss"),
    "bad-release": Scenario("bad_release", runbook=True),
}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
PHASES = [
    "before-fault",
    "fault-in-effect",
    "awaiting-approval",
    "runbook-running",
    "between-stages",
    "reverting-or-observing",
]
TARGET = """
name: interrupt-trials
environment: sandbox
platform: {{kind: sandbox, state_dir: "{state}", eviction_timeout: 5s, ha_detection_window: 2s}}
tiers:
  finance-core: {{rto: 5m, rpo: 0s}}
  integrations: {{rto: 30m, rpo: 5m}}
  ledger-restore: {{rto: 30m, rpo: 1m}}
default_tier: finance-core
probes: {{catalogue: "{catalogue}", interval: 200ms, steady_state: 1s, settle_timeout: 90s}}
stability: {{samples: 3, duration: 600ms}}
scenarios:
  node-crash: {{recovery_timeout: 30s, observe_after_recovery: 1s, params: {{node: erp-b}}}}
  node-freeze: {{recovery_timeout: 30s, observe_after_recovery: 1s, params: {{node: erp-c}}}}
  zone-outage: {{recovery_timeout: 60s, observe_after_recovery: 1s, params: {{zone: {zone}}}}}
  database-failover: {{recovery_timeout: 60s, observe_after_recovery: 1s}}
  database-corruption-and-point-in-time-restore: {{tier: ledger-restore, recovery_timeout: 120s,
                                                   observe_after_recovery: 1s}}
  region-outage: {{tier: integrations, recovery_timeout: 120s, observe_after_recovery: 1s}}
  certificate: {{recovery_timeout: 30s, observe_after_recovery: 1s}}
  cache-loss: {{recovery_timeout: 30s, observe_after_recovery: 1s}}
  bad-release: {{recovery_timeout: 60s, observe_after_recovery: 1s,
                params: {{version: "2026.12.0+posting-fails"}}}}
safety:
  allow:
    nodes: ["erp-*", "db-*", "cache-*", "dr-*"]
    zones: [a, b, c]
    regions: [primary]
    databases: ["*"]
    certificates: ["*"]
    caches: ["*"]
    releases: ["*"]
  blast_radius: {{max_nodes: 3, max_zones: 1, max_regions: 1, max_node_share: 0.6}}
  runbook_approval: {{by: file, file: "{approvals}", timeout: 120s}}
  baseline_timeout: 120s
"""


# -- reading the run from outside ------------------------------------------------------
def journal_ops(work: Path) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for path in sorted((work / ".ledgerdrill" / "journal").glob("*.jsonl")):
        for raw in path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue  # a line being written
    return lines


def is_runbook(line: dict[str, object]) -> bool:
    record = line.get("record")
    return isinstance(record, dict) and "runbook" in record


def phase_now(work: Path, log: Path) -> str:
    """The run's phase, from its journal and its progress lines (the last one wins)."""
    ops = journal_ops(work)
    text = log.read_text(errors="replace") if log.exists() else ""
    last_line = text.strip().splitlines()[-1] if text.strip() else ""
    if "reverting" in last_line or "recovered, observing" in last_line or "reverted" in last_line:
        return "reverting-or-observing"
    runbook = [o for o in ops if o.get("op") == "intent" and is_runbook(o)]
    if runbook:
        done = {o.get("id") for o in ops if o.get("op") == "done"}
        if runbook[-1].get("id") in done:
            return "reverting-or-observing"
        staged = [o for o in ops if o.get("op") == "stage"]
        return "between-stages" if staged else "runbook-running"
    if "awaiting approval" in last_line:
        return "awaiting-approval"
    if any(o.get("op") == "injected" for o in ops):
        return "fault-in-effect"
    if any(o.get("op") == "intent" for o in ops):
        return "fault-in-effect"  # injecting: the journal is written first
    return "before-fault"


def locust_left(work: Path) -> list[int]:
    """Locust processes the trials' runs started (they run in a folder under ``work``)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "-m locust" in cmdline and str(proc.info["cwd"] or "").startswith(str(work)):
            found.append(proc.pid)
    return found


# -- one trial -------------------------------------------------------------------------
@dataclass
class Trial:
    scenario: str
    signal: str  # a SIGNALS key or "none"
    phase: str  # wanted phase ("-" for none)


@dataclass
class Outcome:
    seen_phase: str
    problems: list[str]
    exit_code: int | None
    cleanup_exit: int | None
    seconds: float


class Trials:
    def __init__(self, state_dir: Path, work: Path, settle_s: float, rng: random.Random) -> None:
        self.state_dir = state_dir
        self.work = work
        self.settle_s = settle_s
        self.rng = rng
        self.platform = SandboxPlatform("trials", state_dir, default_topology())
        self.witness = SandboxWitness(state_dir)
        self.approvals = work / "approvals.yaml"

    def _zone(self, role: str) -> str:
        topology = self.platform.database_topology()
        member = next(m for m in topology.members if m.role == role)
        return default_topology().node(member.node).zone

    def _target(self, scenario: Scenario) -> Path:
        zone = self._zone(scenario.zone_of) if scenario.zone_of else "a"
        path = self.work / "target.yaml"
        path.write_text(TARGET.format(
            state=self.state_dir, catalogue=REPO / "probes" / "sandbox.yaml", zone=zone,
            approvals=self.approvals,
        ))  # fmt: skip
        return path

    def run(self, trial: Trial) -> Outcome:
        scenario = SCENARIOS[trial.scenario]
        started = time.monotonic()
        before = read_shape(self.platform)
        target = self._target(scenario)
        # hold the step in its approval wait only when that is the phase wanted
        self.approvals.write_text(
            "{}\n" if trial.phase == "awaiting-approval" else "approve: [all]\n"
        )
        log = self.work / "run.log"
        with open(log, "w") as out:
            run = subprocess.Popen(
                [sys.executable, "-m", "ledgerdrill.cli", "gameday", "--target", str(target),
                 "--scenarios", str(REPO / "scenarios"), "--reports-dir",
                 str(self.work / "reports"), "-k", scenario.select],
                cwd=self.work, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            seen = self._signal_in_phase(run, trial, log)
        cleanup_exit = None
        if trial.signal == "SIGKILL" and seen != "finished before the signal":
            time.sleep(1.5)  # the locustfile notices its parent died within ~1 s
            done = subprocess.run(
                [sys.executable, "-m", "ledgerdrill.cli", "cleanup"], cwd=self.work,
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            cleanup_exit = done.returncode
        problems = self._judge(before)
        if trial.signal == "none" and run.returncode != 0:
            # left alone, the drill must PASS: a run that failed or could not start (the
            # second of two starting from what the first left) is not "back" either
            problems.append(f"the drill, not interrupted, exited {run.returncode}: not a PASS")
        if cleanup_exit not in (None, 0) and not problems:
            problems.append(f"cleanup exited {cleanup_exit} although the platform is back")
        return Outcome(seen, problems, run.returncode, cleanup_exit, time.monotonic() - started)

    def _signal_in_phase(self, run: subprocess.Popen[bytes], trial: Trial, log: Path) -> str:
        if trial.signal == "none":
            run.wait(timeout=900)
            return "-"
        order = PHASES.index(trial.phase)
        deadline = time.monotonic() + 600
        while run.poll() is None and time.monotonic() < deadline:
            now = phase_now(self.work, log)
            if PHASES.index(now) >= order:
                break
            time.sleep(0.05)
        else:
            if run.poll() is not None:
                return "finished before the signal"
        # somewhere inside the phase: a short random wait, except for the brief ones
        spread = {"before-fault": 1.5, "fault-in-effect": 2.5, "awaiting-approval": 1.5,
                  "reverting-or-observing": 0.5}.get(trial.phase, 0.0)  # fmt: skip
        time.sleep(self.rng.uniform(0, spread))
        if run.poll() is not None:
            return "finished before the signal"
        seen = phase_now(self.work, log)
        run.send_signal(SIGNALS[trial.signal])
        try:
            run.wait(timeout=300)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
            seen += " (hung after the signal)"
        return seen

    def _judge(self, before: object) -> list[str]:
        from ledgerdrill.platforms.shape import PlatformShape

        assert isinstance(before, PlatformShape)
        problems: list[str] = []
        check = await_baseline(lambda: read_shape(self.platform), before,
                               timeout_s=self.settle_s, interval_s=2.0)  # fmt: skip
        problems += [f"shape: {line}" for line in check.differences]
        witness = self.witness.await_healthy(timeout_s=30)
        problems += [f"witness: {line}" for line in witness.problems]
        pending = FaultJournal(self.work / ".ledgerdrill").pending()
        if pending:
            problems.append(f"{len(pending)} journal entries still pending")
        if locust_left(self.work):
            problems.append("Locust left running")
        return problems

    def repair(self) -> None:
        """After a dirty trial: what an operator would do, so the next trial starts clean."""
        subprocess.run([sys.executable, "-m", "ledgerdrill.cli", "cleanup", "--force"],
                       cwd=self.work, capture_output=True, timeout=600, check=False)  # fmt: skip
        for node in self.platform.nodes():
            self.platform.restore_node(node.name)
        for region in self.platform.regions():
            self.platform.restore_region(region)
        self.platform.settle()


def draw(count: int, rng: random.Random) -> list[Trial]:
    """Random trials over every scenario, signal and phase the scenario has."""
    trials = []
    for _ in range(count):
        name = rng.choice(sorted(SCENARIOS))
        scenario = SCENARIOS[name]
        phases = [p for p in PHASES
                  if (scenario.runbook or p not in ("awaiting-approval", "runbook-running"))
                  and (scenario.stages or p != "between-stages")]  # fmt: skip
        trials.append(Trial(name, rng.choice(sorted(SIGNALS)), rng.choice(phases)))
    return trials


def parse_case(text: str) -> Trial:
    try:
        scenario, sig, phase = text.split(":")
    except ValueError:
        raise SystemExit(f"--case {text!r}: expected scenario:signal:phase") from None
    if scenario not in SCENARIOS:
        raise SystemExit(f"--case {text!r}: scenario must be one of {', '.join(SCENARIOS)}")
    if sig != "none" and sig not in SIGNALS:
        raise SystemExit(f"--case {text!r}: signal must be none or one of {', '.join(SIGNALS)}")
    if sig != "none" and phase not in PHASES:
        raise SystemExit(f"--case {text!r}: phase must be one of {', '.join(PHASES)}")
    return Trial(scenario, sig, phase if sig != "none" else "-")


def main() -> int:
    # a shell starts a background job with SIGINT ignored, and Python keeps an inherited
    # SIG_IGN: without this, `kill -INT` on a backgrounded series did nothing (the
    # trials' own drills run in processes of their own, which set their handlers)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="random trials to draw")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case", action="append", default=[], type=parse_case,
                        help="a fixed trial scenario:signal:phase (repeatable; replaces "
                        "the random draw)")  # fmt: skip
    parser.add_argument("--settle", type=float, default=120.0,
                        help="seconds the platform may take to read back as before")  # fmt: skip
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "sandbox.yaml")
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help="sandbox state folder (default: a fresh temporary one, removed afterwards)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", type=Path, default=None, metavar="FILE",
        help="append each trial's result to FILE as it finishes; trials already in it are "
        "not run again (same --seed and --trials), and the summary covers the whole file",
    )  # fmt: skip
    parser.add_argument(
        "--chunk", type=int, default=None, metavar="N",
        help="with --resume: run at most N more trials, then summarise",
    )  # fmt: skip
    args = parser.parse_args()
    if args.resume is not None and (args.resume.is_dir() or not args.resume.parent.is_dir()):
        parser.error(f"--resume {args.resume}: give a file to append results to (it may not"
                     " exist yet), in a folder that exists")  # fmt: skip
    if args.chunk is not None and args.chunk < 1:
        parser.error(f"--chunk {args.chunk}: run at least 1 trial per chunk")
    rng = random.Random(args.seed)
    trials = args.case or draw(args.trials, rng)
    if args.resume is not None:
        return _resume(args, trials, args.resume)
    # the target file gives the sandbox's settings; its state folder is not used, so
    # the trials never share (or disturb) a sandbox someone else is drilling
    _, settings, _ = control.sandbox_target(args.target)
    with tempfile.TemporaryDirectory(prefix="ledgerdrill-trials-", dir="/tmp") as own:
        os.chmod(own, 0o755)  # PostgreSQL runs as nobody under root: it must reach its folder
        state_dir = (args.state_dir or Path(own) / "sandbox").resolve()
        return _run_all(trials, rng, settings, state_dir, settle_s=args.settle)


def _resume(args: argparse.Namespace, trials: list[Trial], path: Path) -> int:
    """Long series in chunks: the trials already in ``path`` (by number) are skipped, the
    rest run (at most ``--chunk``), each appended as it finishes; the summary is the file's.
    Each trial's random timing comes from its own seed, so a trial is the same trial
    whichever chunk runs it."""
    done = _read_results(path)
    todo = [(n, t) for n, t in enumerate(trials, 1) if n not in done][: args.chunk]
    print(f"{len(done)} trial(s) already in {path}; running {len(todo)} of the "
          f"{len(trials) - len(done)} left", flush=True)  # fmt: skip
    if todo:
        _, settings, _ = control.sandbox_target(args.target)
        with tempfile.TemporaryDirectory(prefix="ledgerdrill-trials-", dir="/tmp") as own:
            os.chmod(own, 0o755)
            state_dir = (args.state_dir or Path(own) / "sandbox").resolve()
            _run_all([t for _, t in todo], random.Random(args.seed), settings, state_dir,
                     settle_s=args.settle, numbers=[n for n, _ in todo], record=path,
                     seed=args.seed, summarise=False)  # fmt: skip
    return _summarise(list(_read_results(path).values()), print)


def _read_results(path: Path) -> dict[int, dict[str, object]]:
    found: dict[int, dict[str, object]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                found[int(row["number"])] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill mid-write: that trial runs again
    return found


def _summarise(rows: list[dict[str, object]], say: Callable[[str], None]) -> int:
    table: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    dirty: list[str] = []
    for row in sorted(rows, key=lambda r: int(str(r["number"]))):
        cell = table[(str(row["scenario"]), str(row["signal"]), str(row["phase"]))]
        cell[1] += 1
        cell[0] += not row["problems"]
        problems = row["problems"]
        if problems:
            listed = "; ".join(map(str, problems)) if isinstance(problems, list) else problems
            dirty.append(f"trial {row['number']}: NOT BACK: {listed}")
    say(f"\n{'scenario':29} {'signal':7} {'phase when signalled':28} {'at baseline':>11}")
    for (scenario, sig, phase), (clean, total) in sorted(table.items()):
        say(f"{scenario:29} {sig:7} {phase:28} {clean:5d}/{total:<5d}")
    total = sum(t for _, t in table.values())
    clean = sum(c for c, _ in table.values())
    for line in dirty:
        say(f"  {line}")
    say(f"trials back at baseline: {clean}/{total} (goal {total}/{total}) "
        f"{'PASS' if clean == total else 'FAIL'}")  # fmt: skip
    return 0 if clean == total else 1


def _run_all(
    trials: list[Trial], rng: random.Random, settings: SandboxPlatformSettings,
    state_dir: Path, *, settle_s: float, say: Callable[[str], None] = print,
    numbers: list[int] | None = None, record: Path | None = None, seed: int | None = None,
    summarise: bool = True,
) -> int:  # fmt: skip
    rows: list[dict[str, object]] = []
    numbers = numbers or list(range(1, len(trials) + 1))
    with control.running(state_dir, settings, progress=say), \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        runner = Trials(state_dir, Path(tmp), settle_s, rng)
        first = runner.witness.await_healthy(timeout_s=60)
        if not first.healthy:
            say("the sandbox is not healthy before any trial: " + "; ".join(first.problems))
            return 2
        for number, trial in zip(numbers, trials, strict=True):
            if seed is not None:  # a trial's timing from its own seed: the same in any chunk
                runner.rng = random.Random(f"{seed}-{number}")
            outcome = runner.run(trial)
            row: dict[str, object] = {
                "number": number, "scenario": trial.scenario, "signal": trial.signal,
                "phase": outcome.seen_phase, "seconds": round(outcome.seconds, 1),
                "exit": outcome.exit_code, "cleanup_exit": outcome.cleanup_exit,
                "problems": outcome.problems,
            }  # fmt: skip
            rows.append(row)
            if record is not None:
                with record.open("a") as out:
                    out.write(json.dumps(row) + "\n")
            verdict = "back at baseline" if not outcome.problems else (
                "NOT BACK: " + "; ".join(outcome.problems))  # fmt: skip
            cleanup = (
                "" if outcome.cleanup_exit is None else f", cleanup exit {outcome.cleanup_exit}"
            )
            say(f"trial {number:3d}: {trial.scenario:29} {trial.signal:7} "
                f"{outcome.seen_phase:24} {outcome.seconds:5.0f}s (exit {outcome.exit_code}"
                f"{cleanup}): {verdict}")  # fmt: skip
            sys.stdout.flush()
            if outcome.problems:
                runner.repair()
    return _summarise(rows, say) if summarise else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LedgerdrillError as exc:  # a user's mistake (target file, sandbox): one line
        sys.exit(f"{Path(__file__).name}: {exc}")
