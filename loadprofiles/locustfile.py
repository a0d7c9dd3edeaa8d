"""Finance user flows for Locust, speaking only Odoo's external JSON-RPC API.

Runs unchanged against a real Odoo or the ledgerdrill sandbox's reference ERP:
``POST /web/session/authenticate`` then ``POST /web/dataset/call_kw/<model>/<method>``.

Settings come from the environment only (the harness sets them; credentials never go on
a command line, where ``ps`` would show them):

``LEDGERDRILL_ERP_URL``        base URL, e.g. ``https://127.0.0.1:8443``
``LEDGERDRILL_ERP_DB``         database name
``LEDGERDRILL_ERP_LOGIN``      user login
``LEDGERDRILL_ERP_PASSWORD``   password (or an API key)
``LEDGERDRILL_ERP_CA_BUNDLE``  PEM file of the CA to trust (TLS is always verified; the
                               system trust store is used when this is empty)
``LEDGERDRILL_LOAD_PLAN``      JSON plan written by ``ledgerdrill.load`` (stages, mixes, and
                               the file where the harness says the drill's phase);
                               without it no shape is defined and ``-u``/``-r`` apply
``LEDGERDRILL_LOAD_SECONDS``   file for per-second counts and latency histograms (JSON lines)
``LEDGERDRILL_LOAD_REQUESTS``  file for the per-request record (JSON lines): each request's
                               send time ``s``, answer time ``e`` and outcome ``o`` (``ok``,
                               ``error``, ``unanswered``, ``not-sent``); requests still
                               waiting when Locust stops are written with ``e``/``o`` null
``LEDGERDRILL_LOAD_RUN_ID``    prefix of every posting reference (default: random)
``LEDGERDRILL_ERP_API``        ``jsonrpc`` (default: a session, ``/web/dataset/call_kw``) or
                               ``json2`` (Odoo 19's ``/json/2``, ``LEDGERDRILL_ERP_API_KEY``
                               as the bearer key; HTTP statuses instead of error envelopes)

Flows (one is drawn per iteration from the current stage's mix):

- accountant: a customer invoice (INV) or a vendor bill (BILL), created then posted;
- treasury: a customer receipt or a supplier payment in the bank journal (BNK), created then
  posted, then a look-up of open receivable lines (the reconciliation work list);
- controller: trial balance (``read_group`` on posted lines by account) and aged receivables
  (``search_read`` of receivable lines);
- bank_feed: a statement line posted in BNK with an idempotency reference; with the stage's
  ``replay_share`` it re-sends a reference it already sent, and the ERP's refusal
  (a ValidationError "already exists") is the expected outcome, counted as a success;
- login: drop the session and authenticate again (a reconnect storm); over JSON-2, which
  has no session, check the key again (``res.users.context_get``).

Every posting carries a unique reference (``<run id>-<role>-<counter>-<random>``), so a
checker can find lost and duplicated postings. A JSON-RPC error object (HTTP 200 with
``"error"``) is reported to Locust as a failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import random
import re
import signal
import ssl
import time
import uuid
from collections import defaultdict
from typing import Any

import gevent
from locust import LoadTestShape, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import MasterRunner

ENV = os.environ
URL = ENV.get("LEDGERDRILL_ERP_URL", "").rstrip("/")
DATABASE = ENV.get("LEDGERDRILL_ERP_DB", "")
LOGIN = ENV.get("LEDGERDRILL_ERP_LOGIN", "")
PASSWORD = ENV.get("LEDGERDRILL_ERP_PASSWORD", "")
CA_BUNDLE = ENV.get("LEDGERDRILL_ERP_CA_BUNDLE", "")
# jsonrpc (a session, /web/dataset/call_kw) or json2 (Odoo 19: an API key, /json/2)
API = ENV.get("LEDGERDRILL_ERP_API") or "jsonrpc"
API_KEY = ENV.get("LEDGERDRILL_ERP_API_KEY", "")
if API == "json2":  # positional calls named as Odoo's signatures name them
    from ledgerdrill.odoo_api import json2_body
RUN_ID = ENV.get("LEDGERDRILL_LOAD_RUN_ID") or f"ld-{uuid.uuid4().hex[:8]}"
ROLES = ("accountant", "treasury", "controller", "bank_feed", "login")

JOURNALS = ("INV", "BILL", "BNK", "MISC")
ACCOUNTS = {
    "receivable": "121000",
    "payable": "211000",
    "revenue": "400000",
    "expense": "600000",
    "bank": "101401",
}
DUPLICATE = object()  # the ERP refused a reference it already holds
_SEQUENCE = itertools.count(1)
_REF_IN_TEXT = re.compile(r"'[^']*'")


def _read_plan() -> dict[str, Any] | None:
    path = ENV.get("LEDGERDRILL_LOAD_PLAN")
    if not path:
        return None
    with open(path, encoding="utf-8") as handle:
        plan: dict[str, Any] = json.load(handle)
    return plan


PLAN = _read_plan()
# the harness stops us with SIGINT (Locust's SIGTERM handler only comes after a shape ends);
# a harness started in the background (``cmd &``) passes SIGINT down as ignored: undo that
signal.signal(signal.SIGINT, signal.default_int_handler)
# what the shape's current stage asks for; read by every user at each iteration. The
# shape runs in the master (or the lone process) and tells every process that runs users
STAGE_MESSAGE = "ledgerdrill_stage"
CURRENT: dict[str, Any] = {
    "mix": dict.fromkeys(ROLES[:4], 1.0) | {"login": 0.0},
    "replay_share": 0.0,
    "stage": None,
    "phase": None,
}
if PLAN:
    CURRENT.update(mix=PLAN["stages"][0]["mix"], replay_share=PLAN["stages"][0]["replay_share"])
LOG = logging.getLogger("ledgerdrill.load")
PID = os.getpid()


def _apply_stage(told: dict[str, Any]) -> None:
    if told.get("index") != CURRENT["stage"]:
        LOG.info("stage %s (%s) in process %d", told.get("index"), told.get("phase"), PID)
    CURRENT.update(mix=dict(told["mix"]), replay_share=float(told["replay_share"]),
                   stage=told.get("index"), phase=told.get("phase"))  # fmt: skip


def _on_stage_message(msg: Any, **_: Any) -> None:
    _apply_stage(msg.data)


def _ca_context(cafile: str | None = None) -> ssl.SSLContext:
    """TLS verified against the sandbox's (or the company's) CA, hostname checked.

    geventhttpclient calls this as ``factory(cafile=<certifi bundle>)``; the configured
    bundle wins, the system/certifi store is the fallback."""
    import gevent.ssl

    context: ssl.SSLContext = gevent.ssl.create_default_context(cafile=CA_BUNDLE or cafile)
    return context


def _reference(role: str) -> str:
    return f"{RUN_ID}-{role}-{next(_SEQUENCE)}-{uuid.uuid4().hex[:8]}"


class RpcFailed(Exception):
    """A call failed (already reported to Locust); the flow stops here."""


class FinanceUser(FastHttpUser):
    host = URL or None
    insecure = False  # TLS is verified; see _ca_context
    ssl_context_factory = staticmethod(_ca_context)
    network_timeout = 30.0
    connection_timeout = 10.0

    def wait_time(self) -> float:
        think = float(PLAN["think_time_s"]) if PLAN else 0.5
        return random.uniform(0.5 * think, 1.5 * think)

    def on_start(self) -> None:
        self.uid: int | None = None
        self.journals: dict[str, int] = {}
        self.accounts: dict[str, int] = {}
        self.sent_refs: list[str] = []
        with contextlib.suppress(RpcFailed):  # reported; the first iteration tries again
            self._login()

    # -- JSON-RPC --------------------------------------------------------------------
    def _rpc(self, path: str, params: dict[str, Any], name: str, duplicate_ok: bool = False) -> Any:
        payload = {"jsonrpc": "2.0", "method": "call", "id": next(_SEQUENCE), "params": params}
        post = self.client.post
        with _in_flight(), post(path, json=payload, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.error or ''}"[:200])
                raise RpcFailed(name)
            try:
                body = resp.json()
            except ValueError:
                resp.failure("response is not JSON")
                raise RpcFailed(name) from None
            error = body.get("error") if isinstance(body, dict) else None
            if error is None:
                resp.success()
                return body.get("result")
            data = error.get("data") or {}
            kind = str(data.get("name") or error.get("message") or "error")
            message = str(data.get("message") or error.get("message") or "")
            if duplicate_ok and kind.endswith("ValidationError") and "already exists" in message:
                resp.success()
                return DUPLICATE
            if error.get("code") == 100:  # session expired: log in again next time
                self.uid = None
            # references in messages are unique: hide them so Locust groups the failures
            resp.failure(f"{kind}: {_REF_IN_TEXT.sub('<ref>', message)[:160]}")
            raise RpcFailed(name)

    def _json2(self, model: str, method: str, body: dict[str, Any], name: str,
               duplicate_ok: bool = False) -> Any:  # fmt: skip
        """One JSON-2 call: 200 and the result, else a status and Odoo's error object."""
        headers = {"Authorization": f"bearer {API_KEY}", "X-Odoo-Database": DATABASE}
        post = self.client.post
        with _in_flight(), post(f"/json/2/{model}/{method}", json=body, headers=headers,
                                name=name, catch_response=True) as resp:  # fmt: skip
            try:
                answer = resp.json()
            except ValueError:
                answer = None
            if resp.status_code == 200 and answer is not None:
                resp.success()
                return answer
            if not isinstance(answer, dict) or "name" not in answer:  # a gateway's answer
                resp.failure(f"HTTP {resp.status_code}: {resp.error or ''}"[:200])
                raise RpcFailed(name)
            kind, message = str(answer["name"]), str(answer.get("message") or "")
            if duplicate_ok and kind.endswith("ValidationError") and "already exists" in message:
                resp.success()
                return DUPLICATE
            shown = _REF_IN_TEXT.sub("<ref>", message)[:150]
            resp.failure(f"HTTP {resp.status_code} {kind}: {shown}")
            raise RpcFailed(name)

    def call(self, role: str, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        duplicate_ok = bool(kwargs.pop("duplicate_ok", False))
        if API == "json2":
            name = f"{role}: {model}.{method}"
            result = self._json2(model, method, json2_body(method, args, kwargs), name,
                                 duplicate_ok=duplicate_ok)  # fmt: skip
            # one dict created answers its id over JSON-RPC, a list of one over JSON-2
            if method == "create" and isinstance(result, list) and len(result) == 1:
                return result[0]
            return result
        params = {"model": model, "method": method, "args": list(args), "kwargs": kwargs}
        return self._rpc(
            f"/web/dataset/call_kw/{model}/{method}",
            params,
            f"{role}: {model}.{method}",
            duplicate_ok=duplicate_ok,
        )

    def _login(self) -> None:
        self.client.cookiejar.clear()
        self.uid = None
        if API == "json2":  # no session to open: the key is checked, the user learnt
            info = self._json2("res.users", "context_get", {}, "session: context_get")
        else:
            params = {"db": DATABASE, "login": LOGIN, "password": PASSWORD}
            info = self._rpc("/web/session/authenticate", params, "session: authenticate")
        self.uid = int(info["uid"]) if isinstance(info, dict) and info.get("uid") else None
        if self.uid is None:
            raise RpcFailed("authenticate gave no uid")
        if not self.journals:
            self._look_up_ids()

    def _look_up_ids(self) -> None:
        journals = self.call(
            "setup", "account.journal", "search_read", [["code", "in", list(JOURNALS)]],
            fields=["id", "code"],
        )  # fmt: skip
        accounts = self.call(
            "setup", "account.account", "search_read",
            [["code", "in", list(ACCOUNTS.values())]], fields=["id", "code"],
        )  # fmt: skip
        self.journals = {str(j["code"]): int(j["id"]) for j in journals}
        by_code = {str(a["code"]): int(a["id"]) for a in accounts}
        missing = [c for c in ACCOUNTS.values() if c not in by_code]
        missing += [j for j in JOURNALS if j not in self.journals]
        if missing:
            raise RpcFailed(f"chart of accounts lacks {missing}")
        self.accounts = {key: by_code[code] for key, code in ACCOUNTS.items()}

    # -- postings --------------------------------------------------------------------
    def _post(
        self,
        role: str,
        journal: str,
        move_type: str,
        debit: str,
        credit: str,
        *,
        ref: str | None = None,
        duplicate_ok: bool = False,
    ) -> Any:
        amount = round(random.uniform(10, 5000), 2)
        ref = ref or _reference(role)
        vals = {
            "move_type": move_type,
            "journal_id": self.journals[journal],
            "ref": ref,
            "date": dt.date.today().isoformat(),
            "line_ids": [
                (0, 0, {"account_id": self.accounts[debit], "debit": amount, "credit": 0.0,
                        "name": ref}),
                (0, 0, {"account_id": self.accounts[credit], "debit": 0.0, "credit": amount,
                        "name": ref}),
            ],
        }  # fmt: skip
        move_id = self.call(role, "account.move", "create", vals, duplicate_ok=duplicate_ok)
        if move_id is DUPLICATE:
            return DUPLICATE
        self.call(role, "account.move", "action_post", [move_id])
        return ref

    def accountant(self) -> None:
        if random.random() < 0.6:
            self._post("accountant", "INV", "out_invoice", "receivable", "revenue")
        else:
            self._post("accountant", "BILL", "in_invoice", "expense", "payable")

    def treasury(self) -> None:
        if random.random() < 0.5:
            self._post("treasury", "BNK", "entry", "bank", "receivable")
        else:
            self._post("treasury", "BNK", "entry", "payable", "bank")
        self.call(
            "treasury", "account.move.line", "search_read",
            [["account_id", "=", self.accounts["receivable"]], ["parent_state", "=", "posted"]],
            fields=["move_id", "partner_id", "debit", "credit", "balance"], limit=40,
        )  # fmt: skip

    def controller(self) -> None:
        self.call(
            "controller", "account.move.line", "read_group",
            [["parent_state", "=", "posted"]], ["account_id", "debit:sum", "credit:sum",
                                               "balance:sum"], ["account_id"], lazy=False,
        )  # fmt: skip
        self.call(
            "controller", "account.move.line", "search_read",
            [["account_id", "=", self.accounts["receivable"]], ["parent_state", "=", "posted"]],
            fields=["date", "partner_id", "balance"], limit=80, order="date asc",
        )  # fmt: skip

    def bank_feed(self) -> None:
        if self.sent_refs and random.random() < float(CURRENT["replay_share"]):
            ref = random.choice(self.sent_refs)  # a backlog replay re-sends a known line
            self._post("bank_feed", "BNK", "entry", "bank", "receivable", ref=ref,
                       duplicate_ok=True)  # fmt: skip
            return
        ref = _reference("bank_feed")
        self.sent_refs.append(ref)
        del self.sent_refs[:-200]
        self._post("bank_feed", "BNK", "entry", "bank", "receivable", ref=ref, duplicate_ok=True)

    def login(self) -> None:
        self._login()

    @task
    def work(self) -> None:
        try:
            if self.uid is None or not self.journals:
                self._login()
            mix: dict[str, float] = CURRENT["mix"]
            roles = [r for r in ROLES if mix.get(r, 0) > 0]
            role = random.choices(roles, weights=[mix[r] for r in roles])[0]
            getattr(self, role)()
        except RpcFailed:
            pass  # already reported to Locust as a failure


if PLAN is not None:
    # the schedule is the harness's own (stdlib only): the master runs in the harness's
    # Python, so the stages run here exactly as the profile validator and the tests say
    from ledgerdrill.load.schedule import stage_in_phase, stage_on_its_own

    class PlanShape(LoadTestShape):
        """The profile's stages: following the drill's phases when the harness writes them
        (``phase_file``), else back to back from the start, then stop."""

        def tick(self) -> tuple[int, float] | None:
            assert PLAN is not None
            run_time = self.get_run_time()
            end = PLAN["end_s"]
            if end is not None and run_time >= float(end):
                return None
            stages = PLAN["stages"]
            if PLAN.get("phase_file"):
                phase, elapsed = _drill_phase(str(PLAN["phase_file"]), run_time)
                index: int | None = stage_in_phase(stages, phase, elapsed)
            else:
                index = stage_on_its_own(stages, run_time)
            if index is None:
                return None
            stage = stages[index]
            told = {"index": index, "phase": stage["phase"], "mix": stage["mix"],
                    "replay_share": stage["replay_share"]}  # fmt: skip
            if isinstance(self.runner, MasterRunner):
                # every tick, to every worker: one that joins late is told within a second
                self.runner.send_message(STAGE_MESSAGE, told)
            else:
                _apply_stage(told)
            return int(stage["users"]), float(stage["spawn_rate"])

    _SAID: dict[str, Any] = {}  # what the harness last said (the file is replaced whole)

    def _drill_phase(path: str, run_time: float) -> tuple[str, float]:
        """The drill's phase and the seconds since it began, as the harness last wrote
        them (``{"phase": ..., "since_epoch_s": ...}``); baseline from the start before."""
        with contextlib.suppress(OSError, ValueError):
            with open(path, encoding="utf-8") as handle:
                said = json.load(handle)
            if isinstance(said, dict) and {"phase", "since_epoch_s"} <= said.keys():
                _SAID.update(said)
        if not _SAID:
            return "baseline", run_time
        return str(_SAID["phase"]), max(0.0, time.time() - float(_SAID["since_epoch_s"]))


# -- exact per-second counts and latency histograms ------------------------------------
SECONDS_FILE = ENV.get("LEDGERDRILL_LOAD_SECONDS")
_buckets: dict[int, dict[str, Any]] = defaultdict(
    lambda: {"requests": 0, "failures": 0, "hist": defaultdict(int)}
)


def _rounded_ms(ms: float) -> int:
    """Locust's own rounding of response times (two significant digits above 100 ms)."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


@events.request.add_listener
def _on_request(response_time: float, exception: Exception | None, **meta: Any) -> None:
    bucket = _buckets[int(time.time())]
    bucket["requests"] += 1
    bucket["failures"] += exception is not None
    bucket["hist"][_rounded_ms(response_time or 0.0)] += 1
    start = meta.get("start_time")
    if REQUESTS_FILE and isinstance(start, float):
        end = start + (response_time or 0.0) / 1000
        outcome = _outcome(exception, meta.get("response"))
        _requests.append({"s": start, "e": end, "o": outcome, **_tags()})


# -- the per-request record: what each user lived through ---------------------------------
REQUESTS_FILE = ENV.get("LEDGERDRILL_LOAD_REQUESTS")
_requests: list[dict[str, Any]] = []
_waiting: dict[int, float] = {}  # request token -> when it was sent (time.time())
_RUNNER: list[Any] = []  # this process's Locust runner, once init has run
_TOKENS = itertools.count()


@contextlib.contextmanager
def _in_flight() -> Any:
    """A request is waiting from here until its answer; one still waiting when Locust
    stops the users (a hung request never reports) is written as never answered."""
    token = next(_TOKENS)
    _waiting[token] = sent = time.time()
    try:
        yield
    except gevent.GreenletExit:  # the user was stopped while it waited: no answer came
        if _RUNNER and _RUNNER[0].state in ("spawning", "running"):
            # a ramp-down between stages stopped it, not the end of the load: the wait
            # ended now, through no fault of the platform (measure/users.py: abandoned)
            _requests.append({"s": sent, "e": time.time(), "o": "abandoned", **_tags()})
        else:  # Locust is stopping: still waiting when the load ended, never answered
            _requests.append({"s": sent, "e": None, "o": None, **_tags()})
        raise
    finally:
        _waiting.pop(token, None)


def _tags() -> dict[str, Any]:
    """The stage running when the request was recorded, and the process that sent it."""
    return {"st": CURRENT["stage"], "p": PID}


def _outcome(exception: Exception | None, response: Any) -> str:
    """ok | error (an answer that is an error) | unanswered (sent, no answer: timeout,
    connection dropped) | not-sent (the connection was refused)."""
    if exception is None:
        return "ok"
    status = getattr(response, "status_code", 0) or 0
    if status > 0:
        return "error"
    cause = getattr(response, "error", None) or exception
    refused = isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower()
    return "not-sent" if refused else "unanswered"


def _flush_requests(final: bool) -> None:
    if not REQUESTS_FILE:
        return
    rows, _requests[:] = list(_requests), []
    if final:
        rows += [{"s": start, "e": None, "o": None, **_tags()} for start in _waiting.values()]
        _waiting.clear()
    if rows:
        with open(REQUESTS_FILE, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
    _write_waiting(final)


def _write_waiting(final: bool) -> None:
    """Who is waiting now, for a reader of the record while we run (the drill): a request
    hung on a frozen server has no row until it ends, yet its user is stuck. One file per
    process, replaced whole at each flush (written beside, then renamed); gone at the end,
    when the still-waiting are rows of their own."""
    assert REQUESTS_FILE
    path = f"{REQUESTS_FILE}.waiting.{PID}"
    if final:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
        json.dump(sorted(_waiting.values()), handle)
    os.replace(f"{path}.tmp", path)


def _flush(upto: float) -> None:
    _flush_requests(final=False)
    if not SECONDS_FILE:
        return
    done = sorted(t for t in _buckets if t < upto)
    if not done:
        return
    with open(SECONDS_FILE, "a", encoding="utf-8") as handle:
        for t in done:
            bucket = _buckets.pop(t)
            line = {"t": t, "requests": bucket["requests"], "failures": bucket["failures"],
                    "hist": dict(bucket["hist"])}  # fmt: skip
            handle.write(json.dumps(line) + "\n")


def _flusher() -> None:
    while True:
        gevent.sleep(1.0)
        _flush(int(time.time()))


def _watch_parent(parent: int) -> None:
    """Stop (as on SIGINT: stats are written) when the harness that started us is gone,
    even if it was SIGKILLed and could not stop us itself."""
    while True:
        gevent.sleep(0.5)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGINT)
            return


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    _RUNNER[:] = [runner] if runner is not None else []
    if runner is not None and not isinstance(runner, MasterRunner):
        runner.register_message(STAGE_MESSAGE, _on_stage_message)
    parent = ENV.get("LEDGERDRILL_LOAD_PARENT_PID")
    if parent and parent.isdigit():
        gevent.spawn(_watch_parent, int(parent))


@events.test_start.add_listener
def _on_test_start(**_: Any) -> None:
    if SECONDS_FILE:
        with open(SECONDS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"event": "start", "epoch_s": time.time()}) + "\n")
        gevent.spawn(_flusher)


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    _flush(float("inf"))


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    _flush(float("inf"))  # requests that ended while the users were being stopped
    _flush_requests(final=True)  # and those still waiting now, never answered
