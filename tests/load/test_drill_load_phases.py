"""A drill drives its load's phases: the fault, the recovery and the post-recovery surge
begin when the drill says, and the surge runs on the recovered platform before the drill
ends -- end to end through the pytest plugin, a fake platform that heals a crashed node,
real Locust and a JSON-RPC server that witnesses every login.
"""

from __future__ import annotations

import json
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]

# settle_timeout 10s: with the machine busy (CI beside it) a fake probe's sample was seen
# held 0.4 s and a 1-s settle called the drill off (INCONCLUSIVE, no fault injected)
TARGET = """
name: fake-lab
environment: sandbox
platform:
  kind: fake
  state_file: state.json
  heal_after: 2s
  capabilities: [NodeControl]
  entry_url: "http://127.0.0.1:{port}"
tiers:
  finance-core: {{rto: 30s, rpo: 0s}}
default_tier: finance-core
probes: {{interval: 100ms, steady_state: 4s, settle_timeout: 10s}}
stability: {{samples: 3, duration: 300ms}}
scenarios:
  node-crash: {{recovery_timeout: 20s, observe_after_recovery: 1s, params: {{node: node-b}}}}
safety:
  allow: {{nodes: ["node-*"]}}
  blast_radius: {{max_nodes: 1, max_zones: 1, max_node_share: 0.5}}
"""
# two controllers before and during the fault (one login each, at their start); after
# the recovery, three users logging in again and again: a reconnect storm of 4 s
PROFILE = """
name: surge-test
think_time: 100ms
mix: {controller: 1}
stages:
  - {phase: baseline, for: 2s, users: 2, spawn_rate: 2}
  - {phase: fault, for: 30s, users: 2, spawn_rate: 2}
  - {phase: post-recovery, for: 4s, users: 3, spawn_rate: 3, mix: {login: 1}}
"""
SCENARIO = """
import threading
import pytest
from ledgerdrill.faults import NodeCrash
from ledgerdrill.measure import Write, WriteOutcome, measure_loss

@pytest.mark.loadprofile("surge-test")
@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        drill.wait_for_recovery()
        {after_recovery}
        drill.observe()
        now = drill.timeline.clock.now()  # no canary here: a loss-free write of our own
        drill.record_loss(measure_loss([Write("r1", WriteOutcome.OK, now, now)], {{"r1": 1}}, now))
"""
# the surge knocks the node over again 1.5 s after the recovery was seen (the observe
# window is 1 s): down for the fake's 2 s, back before the surge ends
RELAPSE = 'threading.Timer(1.5, platform.crash_node, ["node-b"]).start()'


def run_scenario(pytester: pytest.Pytester, port: int, scenario: str) -> dict[str, object]:
    (pytester.path / "target.yaml").write_text(TARGET.format(port=port))
    profiles = pytester.path / "loadprofiles"
    profiles.mkdir()
    (profiles / "surge-test.yaml").write_text(PROFILE)
    (profiles / "locustfile.py").write_text((REPO / "loadprofiles" / "locustfile.py").read_text())
    pytester.makepyfile(test_scenario=scenario)
    pytester.runpytest("--target=target.yaml", "-p", "no:cacheprovider")
    report = json.loads(next((pytester.path / "reports").glob("*/report.json")).read_text())
    found: dict[str, object] = report["scenarios"][0]
    return found


def epoch(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["at"])).timestamp()


def test_the_surge_runs_after_the_recovery_and_the_drill_waits_for_it(
    pytester: pytest.Pytester, erp: ThreadingHTTPServer
) -> None:
    scenario: Any = run_scenario(
        pytester, erp.server_address[1], SCENARIO.format(after_recovery="pass")
    )
    assert scenario["verdict"] == "PASS", scenario["reasons"]
    assert not [e for e in scenario["events"] if e["kind"] == "recovery.relapsed"]
    events = scenario["events"]
    phases = [(e["name"], epoch(e)) for e in events if e["kind"] == "load.phase"]
    assert [name for name, _ in phases] == ["fault", "recovery", "post-recovery"]
    injected = epoch(next(e for e in events if e["kind"] == "fault.injected"))
    recovered = epoch(next(e for e in events if e["kind"] == "recovery.observed"))
    surge_at = phases[2][1]
    assert phases[0][1] == pytest.approx(injected, abs=0.01)  # from the fault's first act
    assert phases[1][1] == pytest.approx(recovered, abs=0.01)
    assert surge_at >= recovered
    # the drill waited for the surge's 4 s before it ended the load
    ran = next(e for e in events if e["kind"] == "load.post-recovery-ran")
    assert ran["attributes"]["seconds"] >= 4.0
    # the server's witness: one login per controller before the surge, a storm after it
    logins: list[float] = erp.logins  # type: ignore[attr-defined]
    assert len([t for t in logins if t < surge_at]) == 2, logins
    assert len([t for t in logins if t >= surge_at]) >= 6
    # the report's post-recovery phase starts when the surge began and holds its requests
    summary = scenario["load"]["summary"]
    post = next(p for p in summary["phases"] if p["phase"] == "post-recovery")
    assert post["requests"] > 0
    assert summary["t_post_recovery_s"] >= summary["t_recovered_s"]


def test_a_failure_under_the_surge_is_a_relapse_and_the_rto_counts_to_the_final_recovery(
    pytester: pytest.Pytester, erp: ThreadingHTTPServer
) -> None:
    scenario: Any = run_scenario(
        pytester, erp.server_address[1], SCENARIO.format(after_recovery=RELAPSE)
    )
    events = scenario["events"]
    relapsed = [e for e in events if e["kind"] == "recovery.relapsed"]
    assert relapsed, [e["kind"] for e in events]
    seen = epoch(next(e for e in events if e["kind"] == "recovery.observed"))
    surge_at = epoch(next(e for e in events if e["name"] == "post-recovery"))
    injected = epoch(next(e for e in events if e["kind"] == "fault.injected"))
    relapse_at = epoch(relapsed[0])
    assert seen + 1.0 <= relapse_at and surge_at <= relapse_at  # in the surge, not before
    assert scenario["verdict"] == "FAIL"
    reasons = " ".join(scenario["reasons"])
    assert "failed again" in reasons and "under the post-recovery load" in reasons, reasons
    assert "recovered again" in reasons, reasons
    # RTO to the final recovery: after the relapse, not the first recovery (about 2 s)
    assert scenario["measured"]["rto_s"] > relapse_at - injected


# users keep failing 2 s after the probes see the node back (the fake heals it in 2 s):
# the ERP answers the load 503 for 4 s from the fault, while the probes read the platform
USERS_LAG = """
import json, urllib.request
import pytest
from ledgerdrill.faults import NodeCrash
from ledgerdrill.measure import Write, WriteOutcome, measure_loss

@pytest.mark.loadprofile("surge-test")
@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:{port}/control/fail-for", data=json.dumps({{"seconds": 4}}).encode()
        ), timeout=5).read()
        drill.wait_for_recovery()
        drill.observe()
        now = drill.timeline.clock.now()
        drill.record_loss(measure_loss([Write("r1", WriteOutcome.OK, now, now)], {{"r1": 1}}, now))
"""


def test_the_drill_waits_for_the_users_record_not_only_the_probes(
    pytester: pytest.Pytester, erp: ThreadingHTTPServer
) -> None:
    # the 3.3 s CI failure of issue 27's kind: the probes were back, the users' requests
    # succeeded again only 1.5 s before observation ended -- too short for their
    # stability window, so "users not recovered" on a platform that was back
    port = erp.server_address[1]
    scenario: Any = run_scenario(pytester, port, USERS_LAG.format(port=port))
    events = scenario["events"]
    injected = epoch(next(e for e in events if e["kind"] == "fault.injected"))
    recovered = epoch(next(e for e in events if e["kind"] == "recovery.observed"))
    probes_rto = scenario["measured"]["rto_s"]
    users = scenario["measured"]["users"]
    # the probes were back well before the users (the fake heals in 2 s)
    assert probes_rto < 3.5, probes_rto
    assert users["recovered"] is True, users
    assert users["rto_s"] >= 3.9, users  # the 503s lasted 4 s from just after the fault
    # recovery was observed only once the users' record showed a stability window
    assert recovered - injected >= users["rto_s"] + 0.3, (recovered - injected, users)
    assert scenario["verdict"] == "PASS", scenario["reasons"]
    assert not [e for e in events if e["kind"] == "recovery.users-not-back"]


# one request hangs on a "frozen replica" from 1.6 s after the fault for 2.5 s: when the
# probes see the node back (~2.3 s), it has waited under a second -- no trouble yet
USERS_HUNG = USERS_LAG.replace(
    '/control/fail-for", data=json.dumps({{"seconds": 4}})',
    '/control/hang-window", data=json.dumps({{"from": 1.6, "to": 1.9, "seconds": 2.5}})',
)
assert USERS_HUNG != USERS_LAG


def test_a_request_sent_before_the_probes_came_back_holds_the_recovery_until_it_ends(
    pytester: pytest.Pytester, erp: ThreadingHTTPServer
) -> None:
    port = erp.server_address[1]
    scenario: Any = run_scenario(pytester, port, USERS_HUNG.format(port=port))
    hung: list[float] = erp.hung  # type: ignore[attr-defined]
    assert hung, "no load request arrived in the hang window: the test proves nothing"
    events = scenario["events"]
    recovered = epoch(next(e for e in events if e["kind"] == "recovery.observed"))
    probes_back = epoch(next(e for e in events if e["kind"] == "fault.injected")) + float(
        scenario["measured"]["rto_s"]
    )
    assert probes_back < hung[0] + 1.0, "the request had waited a second already"
    # not before the hung request's 504 (and the users' stability window after it): on
    # 1235db7's drill recovery was observed 0.8 s after the request hung, 1.7 s before
    # its 504 -- the users' check then failed on a platform that was back
    assert recovered >= hung[-1] + 2.5, (recovered, hung)
    assert scenario["measured"]["users"]["recovered"] is True, scenario["measured"]["users"]
