"""Probes never raise and classify what they see; the canary's write classification.

The ERP here is a stub JSON-RPC server whose answers are scripted per request, so
every branch of the classification is exercised; the same code runs against the
real sandbox in tests/sandbox.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ledgerdrill.measure.loss import WriteOutcome
from ledgerdrill.probes.base import ProbeSampler, safe_sample
from ledgerdrill.probes.canary import LedgerCanary, measure_canary
from ledgerdrill.probes.http_tls import HttpProbe
from ledgerdrill.probes.odoo_rpc import OdooTarget
from ledgerdrill.probes.redis_backup import RedisProbe
from ledgerdrill.timeline import SystemClock, Timeline


class StubErp:
    """Answers Odoo's JSON-RPC; ``script`` maps a ref to what happens on its post."""

    def __init__(self) -> None:
        self.script: dict[str, str] = {}
        self.posted: list[dict[str, Any]] = []
        self.drafts: dict[int, dict[str, Any]] = {}
        self.status = 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_GET(self) -> None:
                self._send(stub.status, {"status": "pass"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._answer(body["params"], body["id"])

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self, params: dict[str, Any], rid: int) -> None:
                if self.path == "/web/session/authenticate":
                    self._send(200, {"jsonrpc": "2.0", "id": rid, "result": {"uid": 2}})
                    return
                model, method = params["model"], params["method"]
                result: Any = None
                if method == "search_read" and model == "account.journal":
                    result = [{"id": 1}]
                elif method == "search_read" and model == "account.account":
                    result = [{"id": 10, "code": "101401"}, {"id": 11, "code": "400000"}]
                elif method == "search_read" and model == "account.move":
                    result = [dict(m) for m in stub.posted]
                elif method == "search_read" and model == "account.move.line":
                    result = [{"move_id": [m["id"], m["name"]], "debit": 1.0, "credit": 1.0}
                              for m in stub.posted]  # fmt: skip
                elif method == "create":
                    move_id = len(stub.drafts) + 1
                    stub.drafts[move_id] = params["args"][0]
                    result = move_id
                elif method == "action_post":
                    ref = stub.drafts[params["args"][0][0]]["ref"]
                    behaviour = stub.script.get(ref, "ok")
                    if behaviour == "refuse":
                        error = {"code": 200, "message": "Odoo Server Error",
                                 "data": {"name": "odoo.exceptions.UserError", "message": "no"}}  # fmt: skip
                        self._send(200, {"jsonrpc": "2.0", "id": rid, "error": error})
                        return
                    if behaviour == "gateway":
                        self._send(502, {"detail": "bad gateway"})
                        return
                    if behaviour != "lose":  # "lose": acknowledged, never stored
                        number = len(stub.posted) + 1
                        stub.posted.append({"id": number, "name": f"MISC/2026/{number:05d}",
                                            "ref": ref, "journal_id": [1, "MISC"]})  # fmt: skip
                    if behaviour == "hang":
                        time.sleep(1.5)
                    result = True
                self._send(200, {"jsonrpc": "2.0", "id": rid, "result": result})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def erp() -> Iterator[StubErp]:
    stub = StubErp()
    yield stub
    stub.close()


def test_canary_classifies_each_answer_and_measures_loss(erp: StubErp) -> None:
    timeline = Timeline(SystemClock())
    canary = LedgerCanary(OdooTarget(erp.url, "db", "admin", "pw"), timeout_s=1.0, run_id="t")
    canary.start(timeline)
    canary.stop()  # the writes below are driven by hand, one per scripted behaviour
    behaviours = {"r-refuse": "refuse", "r-gateway": "gateway", "r-hang": "hang", "r-lose": "lose"}
    erp.script = {f"{canary.prefix}{ref}": what for ref, what in behaviours.items()}
    outcomes = {
        ref: canary.write_one(f"{canary.prefix}{ref}").outcome
        for ref in ("r-ok", "r-refuse", "r-gateway", "r-hang", "r-lose")
    }
    assert outcomes == {
        "r-ok": WriteOutcome.OK,
        "r-refuse": WriteOutcome.FAIL,  # the server answered: rolled back
        "r-gateway": WriteOutcome.UNKNOWN,  # went out, no trustworthy answer
        "r-hang": WriteOutcome.UNKNOWN,  # timed out after sending (it was stored)
        "r-lose": WriteOutcome.OK,  # acknowledged...
    }
    t_inject = timeline.clock.now()  # the fault came after these writes
    loss, invariants = measure_canary(canary, t_inject)
    prefix = canary.prefix
    assert f"{prefix}r-lose" in loss.lost  # ...and missing on read-back: lost
    assert f"{prefix}r-hang" in loss.recovered  # unknown but present
    assert f"{prefix}r-ok" not in loss.lost
    assert loss.rpo_s > 0
    assert invariants.entries == len(erp.posted)
    assert not invariants.unbalanced and not invariants.duplicate_refs
    lane = timeline.samples("ledger-canary")
    acked = sum(w.outcome is WriteOutcome.OK for w in canary.writes)
    assert len(lane) == len(canary.writes) and sum(s.ok for s in lane) == acked >= 2


def test_canary_cannot_start_without_an_erp() -> None:
    canary = LedgerCanary(OdooTarget("http://127.0.0.1:9", "db", "a", "p"), timeout_s=0.5)
    with pytest.raises(Exception, match=r"(?i)connect"):
        canary.start(Timeline(SystemClock()))


def test_http_probe_reports_status_and_refusal_as_samples(erp: StubErp) -> None:
    timeline = Timeline(SystemClock())
    probe = HttpProbe("health", f"{erp.url}/web/health", body_contains="pass")
    assert probe.sample(timeline, 1.0).ok
    erp.status = 503
    failed = probe.sample(timeline, 1.0)
    assert not failed.ok and "503" in failed.detail
    refused = HttpProbe("gone", "http://127.0.0.1:9/").sample(timeline, 0.5)
    assert not refused.ok and "Connect" in refused.detail


def test_a_crashing_probe_is_a_failed_sample_and_a_hung_one_is_bounded() -> None:
    class Crashes:
        name, counts_for_rto = "crashes", True

        def sample(self, timeline: Timeline, timeout_s: float) -> Any:
            raise RuntimeError("boom")

    timeline = Timeline(SystemClock())
    sample = safe_sample(Crashes(), timeline, 0.1)
    assert not sample.ok and "boom" in sample.detail
    # Redis on a port nobody listens on: failed samples at the interval, never a hang
    sampler = ProbeSampler(
        RedisProbe("cache", "redis://127.0.0.1:9/0"), timeline, interval_s=0.05
    ).start()
    time.sleep(0.5)
    sampler.stop()
    samples = timeline.samples("cache")
    assert len(samples) >= 5 and not any(s.ok for s in samples)
    assert max(s.latency_s for s in samples) < 0.05


def test_a_shared_canary_sees_a_loss_reaching_back_before_the_scenario(
    erp: StubErp,
) -> None:
    """Issue 32: one canary writes for the whole game day. Each scenario counts its own
    writes (since the previous read-back) and checks every earlier acknowledged write
    again: one present at the first read-back and missing at the second was lost in the
    second scenario -- its loss reaches back before that scenario began -- while what the
    first scenario already reported is not reported twice."""
    first, second = Timeline(SystemClock()), Timeline(SystemClock())
    canary = LedgerCanary(OdooTarget(erp.url, "db", "admin", "pw"), timeout_s=1.0, run_id="s")
    canary.shared = True
    canary.start(first)
    canary.stop()  # writes driven by hand below
    erp.script = {f"{canary.prefix}lost-1": "lose"}
    for ref in ("a", "lost-1", "b"):
        canary.write_one(f"{canary.prefix}{ref}")
    loss_1, _ = measure_canary(canary, first.clock.now())
    # (the canary's own thread may have written once before it was stopped)
    assert loss_1.lost == (f"{canary.prefix}lost-1",) and loss_1.attempted == len(canary.writes)
    written_first = len(first.samples("ledger-canary"))
    canary.follow(second)  # the next scenario: its samples go to its own timeline
    for ref in ("c", "d"):
        canary.write_one(f"{canary.prefix}{ref}")
    t_inject = second.clock.now()
    # the second scenario's fault takes "b" (a first-scenario write) and "d" away
    erp.posted[:] = [m for m in erp.posted if m["ref"] not in {f"{canary.prefix}b", f"{canary.prefix}d"}]
    loss_2, _ = measure_canary(canary, t_inject)
    assert loss_2.lost == (f"{canary.prefix}b", f"{canary.prefix}d")  # lost-1 not again
    assert loss_2.attempted == 2 and loss_2.unexpected == ()
    b_ack = next(w.acked_at for w in canary.writes if w.ref == f"{canary.prefix}b")
    assert b_ack is not None and abs(loss_2.rpo_s - t_inject.seconds_since(b_ack)) < 1e-6
    assert len(second.samples("ledger-canary")) == 2
    assert len(first.samples("ledger-canary")) == written_first
    assert loss_2.canary_history_s is not None and loss_2.canary_history_s >= loss_2.rpo_s
