"""Do the users' figures tell the truth? node-freeze on the sandbox, with an independent
client beside the harness, once per entry-point style.

For each style (``naive``: today's Traefik configuration before hardening; ``hardened``:
the default) this starts a sandbox of that style, then runs ``ledgerdrill gameday -k
node_freeze`` while a plain httpx client -- not Locust, not the probes -- calls the ERP
through the entry point as fast as it is answered (one call in flight, like one user).
The client's longest stall (waiting with nothing answered successfully, from the fault
on) is compared with the users' figure for one user's experience, the longest single
wait (``measured.users.longest_wait_s``): a Locust user, like the client, has one
request in flight. ``longest_stall_s`` (nobody getting through) is printed beside it;
it equals the client's only when every user is stuck at once.

With ``--clients N`` N such clients call at once (the figure compared is the longest
stall any of them saw); with ``--runs N`` the drill runs N times in a row on the same
sandbox, the second starting from whatever the first left.

Usage: .venv/bin/python benchmarks/users_witness.py [--styles naive,hardened] [--runs 1]
       [--clients 1] [--json rows.json]
Last line: ``users' longest wait vs an independent client's stall, worst gap: <s>
(goal <= 1 s) PASS|FAIL``
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ledgerdrill.platforms.sandbox import control
from ledgerdrill.targets import SandboxPlatformSettings

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.0
# a wait this long means a request met the frozen replica. The client and the load's
# users are different users: with the hardened entry point a replica is out of rotation
# within ~0.5 s, and the few requests routed to it in that time may all be the client's
# (or all the users'). Then their waits differ and neither figure is wrong: such a run
# is not compared (said in the table), and the bound is checked instead.
MET_S = 1.0
BOUND_S = 3.0  # hardened: the 2 s forwarding timeout and a second of margin
TARGET = """
name: users-witness
environment: sandbox
platform: {{kind: sandbox, state_dir: "{state}", entry_point: {style}}}
tiers:
  # tight on purpose: a frozen replica costs the probes ~3 s; users stuck behind naive
  # Traefik wait ~10 s, which this target must catch
  finance-core: {{rto: 6s, rpo: 0s}}
default_tier: finance-core
probes: {{catalogue: "{catalogue}", interval: 200ms, steady_state: 1s}}
scenarios:
  node-freeze: {{recovery_timeout: 30s, observe_after_recovery: 3s, params: {{node: erp-c}}}}
safety:
  allow: {{nodes: ["erp-*"], zones: [a, b, c]}}
  blast_radius: {{max_nodes: 1, max_zones: 1}}
"""


class Client(threading.Thread):
    """One user: log in, then read the partner count again and again, bounded."""

    def __init__(self, status: dict[str, Any], until: float) -> None:
        super().__init__(daemon=True)
        self.status = status
        self.until = until
        self.calls: list[tuple[float, float, bool]] = []  # sent, answered, ok (epoch s)

    def run(self) -> None:
        trust = ssl.create_default_context(cafile=self.status["ca_bundle"])
        url = self.status["entry_url"]
        with httpx.Client(verify=trust, trust_env=False, timeout=30.0) as http:
            login = {"db": self.status["database"], "login": self.status["login"],
                     "password": self.status["password"]}  # fmt: skip
            http.post(f"{url}/web/session/authenticate", json={"params": login})
            body = {"params": {"model": "res.partner", "method": "search_count",
                               "args": [[]], "kwargs": {}}}  # fmt: skip
            while time.time() < self.until:
                sent = time.time()
                try:
                    answer = http.post(f"{url}/web/dataset/call_kw", json=body)
                    ok = answer.status_code == 200 and "error" not in answer.json()
                except (httpx.HTTPError, ValueError):
                    ok = False
                self.calls.append((sent, time.time(), ok))


def longest_stall(calls: list[tuple[float, float, bool]], start: float, end: float) -> float:
    """The client waits all the time (one call after another): its stall is the longest
    gap between successful answers in [start, end]."""
    answers = [start, *sorted(e for _, e, ok in calls if ok and start < e <= end), end]
    return max(b - a for a, b in itertools.pairwise(answers))


def style_runs(style: str, runs: int, clients: int) -> list[dict[str, Any]]:
    """``runs`` drills one after another on one sandbox (the second starts from whatever
    the first left), each with ``clients`` independent clients calling beside the load."""
    state = Path(tempfile.mkdtemp(prefix=f"ldwit-{style}-", dir="/tmp"))
    state.chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix="ldwit-run-"))
    target = work / "target.yaml"
    target.write_text(TARGET.format(state=state, style=style,
                                    catalogue=REPO / "probes" / "sandbox.yaml"))  # fmt: skip
    settings = SandboxPlatformSettings(state_dir=str(state), entry_point=style)  # type: ignore[arg-type]
    rows = []
    try:
        with control.running(state, settings, progress=lambda _: None):
            status = control.read_status(state) or {}
            for run in range(runs):
                rows.append(one_run(style, status, target, work / f"reports-{run}", clients))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    return rows


def one_run(
    style: str, status: dict[str, Any], target: Path, reports: Path, clients: int
) -> dict[str, Any]:
    others = [Client(status, until=time.time() + 180) for _ in range(clients)]
    for client in others:
        client.start()
    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "gameday", "--target", str(target),
         "--scenarios", str(REPO / "scenarios"), "--reports-dir", str(reports),
         "-k", "node_freeze"],
        cwd=target.parent, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    for client in others:
        client.until = 0.0
    for client in others:
        client.join(40)
    report = json.loads(sorted(reports.glob("*/report.json"))[-1].read_text())
    scenario = report["scenarios"][0]
    events = {e["kind"]: datetime.fromisoformat(e["at"]).timestamp()
              for e in scenario["events"]}  # fmt: skip
    start, end = events["fault.injected"], events.get("fault.reverting", time.time())
    users = scenario["measured"]["users"] or {}
    stalls = [longest_stall(client.calls, start, end) for client in others]
    return {
        "style": style,
        "verdict": scenario["verdict"],
        "exit": done.returncode,
        "probes_rto_s": scenario["measured"]["rto_s"],
        "users_rto_s": users.get("rto_s"),
        "users_stall_s": users.get("longest_stall_s"),
        "users_longest_wait_s": users.get("longest_wait_s"),
        # the longest stall any independent client saw: like the users' longest wait,
        # the worst over several users
        "client_stall_s": max(stalls),
        "client_stalls_s": stalls,
        "client_calls": sum(len(client.calls) for client in others),
        "reasons": scenario["reasons"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default="naive,hardened")
    parser.add_argument("--runs", type=int, default=1,
                        help="drills in a row per style, on one sandbox")
    parser.add_argument("--clients", type=int, default=1,
                        help="independent clients calling beside the load")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.runs < 1 or args.clients < 1:
        parser.error("--runs and --clients must be at least 1")
    rows = [row for style in args.styles.split(",")
            for row in style_runs(style, args.runs, args.clients)]  # fmt: skip
    print(f"{'style':9} {'verdict':8} {'probes RTO':>10} {'users RTO':>9} {'users stall':>11}"
          f" {'longest wait':>12} {'client stall':>12} {'gap':>6}")  # fmt: skip
    gaps, unbounded = [], []
    for row in rows:
        wait, client = row["users_longest_wait_s"], row["client_stall_s"]
        gap = abs(wait - client) if wait is not None else float("inf")
        hardened = row["style"] == "hardened"
        one_sided = hardened and wait is not None and (wait >= MET_S) != (client >= MET_S)
        row["compared"] = not one_sided
        if not one_sided:
            gaps.append(gap)
        if hardened and max(wait or 0.0, client) > BOUND_S:
            unbounded.append(f"{row['style']}: a wait over {BOUND_S:g} s")
        note = "  not compared: only one side met the frozen replica" if one_sided else ""
        print(f"{row['style']:9} {row['verdict']:8} {row['probes_rto_s'] or 0:10.2f}"
              f" {row['users_rto_s'] or 0:9.2f} {row['users_stall_s'] or 0:11.2f}"
              f" {wait or 0:12.2f} {client:12.2f} {gap:6.2f}{note}")  # fmt: skip
        for reason in row["reasons"]:
            print(f"          {reason}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    for problem in unbounded:
        print(f"unbounded: {problem}")
    apart = [abs(row["users_rto_s"] - row["probes_rto_s"]) for row in rows
             if row["style"] == "hardened" and row["users_rto_s"] is not None
             and row["probes_rto_s"] is not None]  # fmt: skip
    if apart:
        print(f"hardened: users' RTO vs the probes' RTO, worst gap {max(apart):.2f} s over"
              f" {len(apart)} runs (issue 28: within 1 s)")  # fmt: skip
    worst = max(gaps, default=float("nan"))
    verdict = "PASS" if gaps and worst <= GOAL_S and not unbounded else "FAIL"
    print(f"users' longest wait vs an independent client's stall, worst gap: {worst:.2f} s"
          f" over {len(gaps)} of {len(rows)} runs (goal <= {GOAL_S:g} s) {verdict}")  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
