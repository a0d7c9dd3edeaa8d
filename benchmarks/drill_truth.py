"""Through the whole drill: is the truth inside the reported RTO's error bar? (issue 33)

Each case is a real ``ledgerdrill gameday`` run of one scenario -- every ERP replica hung
(SIGSTOP) for a known time by ``ScriptedOutage`` -- with the default probe catalogue at a
probe interval drawn at random, like the outage length (seeded; the seed is printed).

The truth is not the harness's: a witness client beside it sends ``GET /web/health``
through the entry point every ``WITNESS_GRID_S``, each on its own connection and thread
(a hung request never delays the next), as users would meet the service. The service
came back between the witness's last failed send and its first healthy answer after it:
a bracket a grid step wide. The drill's RTO says the recovery lies in
``[rto_s - rto_error_s, rto_s]`` after the fault (last failed send .. first healthy
answer, docs/architecture.md); a case is *inside* when the two brackets overlap, and its
miss is the distance between them otherwise.

Run by ``benchmarks/accuracy.py --through-drill N``.
"""

from __future__ import annotations

import json
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ledgerdrill.platforms.sandbox import control
from ledgerdrill.targets import SandboxPlatformSettings

REPO = Path(__file__).resolve().parents[1]
WITNESS_GRID_S = 0.02
WITNESS_TIMEOUT_S = 1.0
GOAL = 0.95
SLACK_S = 0.05
INTERVALS_S = (0.1, 0.2, 0.3)

SCENARIO = '''
"""One case of benchmarks/drill_truth.py: every ERP replica hung for a known time."""

import pytest

from ledgerdrill.faults import ScriptedOutage


@pytest.mark.tier("finance-core")
@pytest.mark.requires("ServiceControl")
def test_scripted_outage(drill, platform):
    drill.steady_state()
    with drill.inject(ScriptedOutage(platform, float(drill.param("duration")))):
        drill.wait_for_recovery()
        drill.observe()
'''

TARGET = """
name: drill-truth
environment: sandbox
platform: {{kind: sandbox, state_dir: "{state}"}}
tiers:
  finance-core: {{rto: 5m, rpo: 0s}}
default_tier: finance-core
probes: {{catalogue: "{catalogue}", interval: {interval_ms}ms, steady_state: 1s}}
scenarios:
  scripted-outage: {{recovery_timeout: 30s, observe_after_recovery: 1s,
                    params: {{duration: {duration}}}}}
safety:
  # every ERP replica, the DR region's too: nothing may answer while the truth is "down"
  allow: {{nodes: ["erp-*", "dr-erp"], zones: [a, b, c, dr-1]}}
  blast_radius: {{max_nodes: 4, max_zones: 4}}
"""


class Witness:
    """``GET /web/health`` through the entry point every grid step, overlapping."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.url = f"{status['entry_url']}/web/health"
        self.trust = ssl.create_default_context(cafile=status["ca_bundle"])
        self.calls: list[tuple[float, float, bool]] = []  # sent, answered, ok (epoch s)
        self._local = threading.local()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        in_flight = int(WITNESS_TIMEOUT_S / WITNESS_GRID_S) + 10
        self._pool = ThreadPoolExecutor(max_workers=in_flight)
        self._clients: list[httpx.Client] = []
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> Witness:
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(5)
        self._pool.shutdown(wait=True)
        for client in self._clients:
            client.close()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(verify=self.trust, trust_env=False, timeout=WITNESS_TIMEOUT_S)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _tick(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._call)
            next_at += WITNESS_GRID_S
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _call(self) -> None:
        sent = time.time()
        try:
            ok = self._client().get(self.url).status_code == 200
        except httpx.HTTPError:
            ok = False
        with self._lock:
            self.calls.append((sent, time.time(), ok))

    def recovery_bracket(self, since: float, until: float) -> tuple[float, float] | None:
        """(last failed send, first healthy answer after it) in [since, until], epoch s."""
        with self._lock:
            calls = sorted(c for c in self.calls if since <= c[0] <= until)
        failed = [sent for sent, _, ok in calls if not ok]
        if not failed:
            return None
        last_failed = max(failed)
        healthy = [answered for sent, answered, ok in calls if ok and sent > last_failed]
        return (last_failed, min(healthy)) if healthy else None


@dataclass
class Case:
    duration_s: float
    interval_s: float
    verdict: str = ""
    rto_s: float | None = None
    rto_error_s: float | None = None
    truth: tuple[float, float] | None = None  # seconds after the fault
    miss_s: float | None = None  # 0 inside; None: not measured

    def judge(self) -> None:
        if self.rto_s is None or self.rto_error_s is None or self.truth is None:
            return
        low, high = self.rto_s - self.rto_error_s, self.rto_s
        self.miss_s = max(0.0, self.truth[0] - high, low - self.truth[1])


def draw_cases(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    return [Case(round(rng.uniform(1.0, 6.0), 2), rng.choice(INTERVALS_S)) for _ in range(count)]


def run_case(case: Case, status: dict[str, Any], state: Path, work: Path) -> None:
    target = work / "target.yaml"
    target.write_text(TARGET.format(
        state=state, catalogue=REPO / "probes" / "sandbox.yaml",
        interval_ms=round(case.interval_s * 1000), duration=case.duration_s,
    ))  # fmt: skip
    reports = work / f"reports-{time.time_ns()}"
    witness = Witness(status).start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ledgerdrill.cli", "gameday", "--target", str(target),
             "--scenarios", str(work / "scenarios"), "--reports-dir", str(reports)],
            cwd=work, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    finally:
        witness.stop()
    found = sorted(reports.glob("*/report.json"))
    if not found:
        case.verdict = "no report"
        print(f"    no report (exit {done.returncode}): {(done.stdout + done.stderr)[-600:]}")
        return
    scenario = json.loads(found[-1].read_text())["scenarios"][0]
    events = {e["kind"]: datetime.fromisoformat(e["at"]).timestamp() for e in scenario["events"]}
    t_inject = events.get("fault.injected")
    case.verdict = scenario["verdict"]
    if case.verdict != "PASS":
        print(f"    {case.verdict}: {'; '.join(scenario['reasons'])[:400]}", flush=True)
    case.rto_s = scenario["measured"]["rto_s"]
    case.rto_error_s = scenario["measured"]["rto_error_s"]
    if t_inject is not None:
        bracket = witness.recovery_bracket(t_inject, events.get("fault.reverting", time.time()))
        if bracket is not None:
            case.truth = (bracket[0] - t_inject, bracket[1] - t_inject)
    case.judge()


def main(count: int, seed: int) -> int:
    cases = draw_cases(count, seed)
    print(f"through-drill accuracy: {count} cases, seed {seed}", flush=True)
    state = Path(tempfile.mkdtemp(prefix="ldtruth-", dir="/tmp"))
    state.chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix="ldtruth-run-"))
    (work / "scenarios").mkdir()
    (work / "scenarios" / "test_truth.py").write_text(SCENARIO)
    try:
        with control.running(state, SandboxPlatformSettings(state_dir=str(state)),
                             progress=lambda _: None):  # fmt: skip
            status = control.read_status(state) or {}
            for number, case in enumerate(cases, 1):
                print(f"  case {number}/{count}: outage {case.duration_s:.2f}s, probes every"
                      f" {case.interval_s * 1000:.0f}ms ...", flush=True)  # fmt: skip
                run_case(case, status, state, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    print(f"\n{'outage':>7} {'interval':>8} {'verdict':>8} {'RTO':>7} {'± bar':>6}"
          f" {'truth from':>10} {'to':>6} {'miss':>6}")  # fmt: skip
    for case in cases:
        truth = case.truth or (float("nan"), float("nan"))
        print(f"{case.duration_s:7.2f} {case.interval_s * 1000:6.0f}ms {case.verdict[:8]:>8}"
              f" {case.rto_s if case.rto_s is not None else float('nan'):7.2f}"
              f" {case.rto_error_s if case.rto_error_s is not None else float('nan'):6.2f}"
              f" {truth[0]:10.2f} {truth[1]:6.2f}"
              f" {case.miss_s if case.miss_s is not None else float('nan'):6.2f}")  # fmt: skip
    measured = [c for c in cases if c.miss_s is not None]
    inside = sum(1 for c in measured if c.miss_s == 0)
    far = [c for c in measured if (c.miss_s or 0) > c.interval_s + SLACK_S]
    unmeasured = len(cases) - len(measured)
    if unmeasured:
        print(f"\n{unmeasured} case(s) not measured (no report, no RTO or no witness bracket):"
              " counted as misses")  # fmt: skip
    if far:
        print(f"{len(far)} miss(es) by more than one interval + {SLACK_S * 1000:.0f} ms")
    share = inside / len(cases) if cases else 0.0
    ok = share >= GOAL and not far
    print(f"rto truth inside bar: {inside}/{len(cases)} (goal >= {GOAL:.0%})"
          f" {'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1
