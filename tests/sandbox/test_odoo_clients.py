"""Third-party Odoo client libraries from PyPI against the sandbox's entry point, over
HTTPS verified with the sandbox's CA: each logs in, reads partners and posts a balanced
journal entry the way its users script it, and the entry is read back by SQL.

The libraries (test extras in ``pyproject.toml``) and what they exercise:

- ``OdooRPC`` (odoorpc): ``/web/webclient/version_info``, ``/web/database/list``,
  ``/jsonrpc`` ``common.login``, ``res.users.context_get``, ``ir.model`` look-ups and
  ``fields_get`` when a model is first used;
- ``odoo-client-lib`` (odoolib), twice: XML-RPC on the historical ``/xmlrpc/<service>``
  paths, and JSON-RPC on ``/jsonrpc``;
- ``ERPpeek`` (erppeek): ``/xmlrpc/db``, ``/xmlrpc/common``, ``/xmlrpc/object``;
- ``Odooly`` (odooly): XML-RPC, ``ir.model`` ``search_read`` of ``model``/``transient``;
- over Odoo 19's JSON-2 with the sandbox's API key: ``odoo-client-lib`` (``json2s``),
  which reads ``/doc-bearer/<model>.json`` to name positional arguments; and raw HTTP.
  (Odooly 2.6.7 with ``api_key=`` logs in over JSON-2 but was seen switching to the web
  client's API mid-session when not verbose; not claimed here.)

Before the routes of issue 37 only ``odoo-client-lib`` over JSON-RPC (of these five
ways) could log in; the others met 404s on routes every Odoo serves.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import erppeek  # type: ignore[import-untyped]
import httpx
import odoolib  # type: ignore[import-untyped]
import odooly  # type: ignore[import-untyped]
import odoorpc  # type: ignore[import-untyped]
import psycopg
import pytest

from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.probes.odoo_rpc import (
    OdooError,
    OdooSession,
    OdooTarget,
    balanced_entry,
    find_accounts,
)

LiveSandbox = Any  # tests/sandbox/conftest.py


@dataclass(frozen=True)
class Login:
    host: str
    port: int
    db: str
    login: str
    password: str
    api_key: str


@pytest.fixture
def trusted(sandbox: LiveSandbox, monkeypatch: pytest.MonkeyPatch) -> LiveSandbox:
    """Every HTTPS client in this process trusts the sandbox's CA (and only through
    verification: nothing here turns checking off). urllib and xmlrpc.client ask
    ``ssl._create_default_https_context``; httpx and requests read the variables."""
    ca = sandbox.status["ca_bundle"]
    monkeypatch.setattr(ssl, "_create_default_https_context",
                        lambda *_a, **_k: ssl.create_default_context(cafile=ca))  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    return sandbox


def entry_values(ids: dict[str, int], ref: str) -> dict[str, Any]:
    return {
        "journal_id": ids["MISC"],
        "ref": ref,
        "line_ids": [
            (0, 0, {"account_id": ids["121000"], "debit": 42.5, "credit": 0, "name": ref}),
            (0, 0, {"account_id": ids["400000"], "debit": 0, "credit": 42.5, "name": ref}),
        ],
    }


def ids_by_code(
    search_read: Callable[[str, list[Any], list[str]], list[dict[str, Any]]],
) -> dict[str, int]:
    journals = search_read("account.journal", [("code", "=", "MISC")], ["code"])
    accounts = search_read("account.account", [("code", "in", ["121000", "400000"])], ["code"])
    return {row["code"]: row["id"] for row in [*journals, *accounts]}


def with_odoorpc(at: Login, ref: str) -> tuple[list[str], int]:
    odoo = odoorpc.ODOO(at.host, protocol="jsonrpc+ssl", port=at.port, timeout=15)
    assert at.db in odoo.db.list()
    odoo.login(at.db, at.login, at.password)
    partners = odoo.env["res.partner"].search_read([], ["name"])
    ids = ids_by_code(lambda m, d, f: odoo.env[m].search_read(d, f))
    move = odoo.env["account.move"].create(entry_values(ids, ref))
    odoo.env["account.move"].browse(move).action_post()
    return [p["name"] for p in partners], move


def with_odoolib(protocol: str) -> Callable[..., tuple[list[str], int]]:
    def run(at: Login, ref: str) -> tuple[list[str], int]:
        conn = odoolib.get_connection(hostname=at.host, port=at.port, protocol=protocol,
                                      database=at.db, login=at.login, password=at.password)  # fmt: skip
        conn.check_login()
        partners = conn.get_model("res.partner").search_read([], ["name"])
        ids = ids_by_code(lambda m, d, f: conn.get_model(m).search_read(d, f))
        moves = conn.get_model("account.move")
        move = moves.create(entry_values(ids, ref))
        moves.action_post([move])
        return [p["name"] for p in partners], move

    return run


def with_erppeek(at: Login, ref: str) -> tuple[list[str], int]:
    client = erppeek.Client(f"https://{at.host}:{at.port}", at.db, at.login, at.password)
    assert at.db in client.db.list()
    partners = client.model("res.partner").read([("id", ">", 0)], ["name"])
    ids = ids_by_code(lambda m, d, f: client.model(m).read(d, f))
    move = client.model("account.move").create(entry_values(ids, ref))
    client.execute("account.move", "action_post", [move.id])
    return [p["name"] for p in partners], int(move.id)


def with_odooly(at: Login, ref: str) -> tuple[list[str], int]:
    client = odooly.Client(f"https://{at.host}:{at.port}/xmlrpc", at.db, at.login, at.password)
    partners = client.env["res.partner"].search_read([], ["name"])
    ids = ids_by_code(lambda m, d, f: client.env[m].search_read(d, f))
    move = client.env["account.move"].create(entry_values(ids, ref))
    move.action_post()
    return [p["name"] for p in partners], int(move.id)


def with_odoolib_json2(at: Login, ref: str) -> tuple[list[str], int]:
    # Odoo 19's JSON-2 with the API key (the library reads /doc-bearer/<model>.json to
    # name positional arguments)
    conn = odoolib.get_connection(hostname=at.host, port=at.port, protocol="json2s",
                                  database=at.db, login=at.login, password=at.api_key)  # fmt: skip
    partners = conn.get_model("res.partner").search_read([], ["name"])
    ids = ids_by_code(lambda m, d, f: conn.get_model(m).search_read(d, f))
    moves = conn.get_model("account.move")
    created = moves.create(entry_values(ids, ref))
    assert isinstance(created, list) and len(created) == 1, created  # JSON-2: ids, a list
    moves.action_post([created[0]])
    return [p["name"] for p in partners], created[0]


CLIENTS = {
    "odoorpc-jsonrpc": with_odoorpc,
    "odoo-client-lib-xmlrpc": with_odoolib("xmlrpcs"),
    "odoo-client-lib-jsonrpc": with_odoolib("jsonrpcs"),
    "erppeek-xmlrpc": with_erppeek,
    "odooly-xmlrpc": with_odooly,
    "odoo-client-lib-json2": with_odoolib_json2,
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_client_library_logs_in_reads_partners_and_posts_a_balanced_entry(
    trusted: LiveSandbox, client: str
) -> None:
    s = trusted.status
    port = int(s["entry_url"].rsplit(":", 1)[1])
    ref = f"client-{client}-{secrets.token_hex(4)}"
    at = Login("127.0.0.1", port, s["database"], s["login"], s["password"], s["api_key"])
    partners, move_id = CLIENTS[client](at, ref)
    assert "Administrator" in partners, partners
    # the second witness: the database, not the ERP's answer
    pg = PgCluster(trusted.state_dir)
    with psycopg.connect(pg.dsn()) as conn:
        row = conn.execute(
            "SELECT m.id, m.state, m.name, sum(l.debit), sum(l.credit), count(l.id)"
            " FROM account_move m JOIN account_move_line l ON l.move_id = m.id"
            " WHERE m.ref = %s GROUP BY m.id",
            (ref,),
        ).fetchone()
    assert row is not None, f"{client}: no entry with ref {ref} in the database"
    assert row[0] == move_id and row[1] == "posted", row
    assert str(row[2]).startswith("MISC/"), row
    assert row[3] == row[4] == 42.5 and row[5] == 2, row


def json2(client: httpx.Client, path: str, body: object, key: str | None) -> httpx.Response:
    headers = {"X-Odoo-Database": "ledgerdrill"}
    if key is not None:
        headers["Authorization"] = f"bearer {key}"
    return client.post(path, json=body, headers=headers)


def test_raw_json2_posts_an_entry_with_the_api_key_and_answers_odoo_statuses(
    sandbox: LiveSandbox,
) -> None:
    s = sandbox.status
    key = s["api_key"]
    verify = ssl.create_default_context(cafile=s["ca_bundle"])
    ref = f"json2-raw-{secrets.token_hex(4)}"
    with httpx.Client(base_url=s["entry_url"], verify=verify, timeout=15) as client:
        found = json2(client, "/json/2/account.account/search_read", {
            "domain": [["code", "in", ["121000", "400000"]]], "fields": ["code"],
        }, key)  # fmt: skip
        assert found.status_code == 200, found.text
        ids = {row["code"]: row["id"] for row in found.json()}
        journal = json2(client, "/json/2/account.journal/search", {
            "domain": [["code", "=", "MISC"]],
        }, key).json()  # fmt: skip
        ids["MISC"] = journal[0]
        created = json2(client, "/json/2/account.move/create",
                        {"vals_list": [entry_values(ids, ref)]}, key)  # fmt: skip
        assert created.status_code == 200, created.text
        [move_id] = created.json()
        posted = json2(client, "/json/2/account.move/action_post", {"ids": [move_id]}, key)
        assert posted.status_code == 200, posted.text
        read = json2(client, "/json/2/account.move/read",
                     {"ids": [move_id], "fields": ["state", "name"]}, key).json()  # fmt: skip
        assert read[0]["state"] == "posted" and read[0]["name"].startswith("MISC/"), read
        # Odoo's statuses and error objects: no key, a wrong key, an unknown parameter,
        # ids to an @api.model method, an unknown model, a user error, not POST
        cases = [
            (None, "/json/2/res.partner/search_read", {}, 401, "werkzeug.exceptions.Unauthorized"),
            ("0" * 40, "/json/2/res.partner/search_read", {}, 401,
             "werkzeug.exceptions.Unauthorized"),
            (key, "/json/2/res.partner/search_read", {"domain": [], "colour": "red"}, 422,
             "werkzeug.exceptions.UnprocessableEntity"),
            (key, "/json/2/res.partner/search_count", {"ids": [1], "domain": []}, 422,
             "werkzeug.exceptions.UnprocessableEntity"),
            (key, "/json/2/res.nothing/search_read", {}, 404, "werkzeug.exceptions.NotFound"),
            (key, "/json/2/account.move/create", {"vals_list": [
                {**entry_values(ids, ref), "ref": f"{ref}-unbalanced", "line_ids": [
                    [0, 0, {"account_id": ids["121000"], "debit": 1, "credit": 0}]]}]}, None,
             None),
        ]  # fmt: skip
        for sent_key, path, body, status, name in cases[:-1]:
            answer = json2(client, path, body, sent_key)
            assert answer.status_code == status, (path, body, answer.text)
            error = answer.json()
            assert error["name"] == name, error
            assert set(error) == {"name", "message", "arguments", "context", "debug"}, error
        # an unbalanced entry posts as a user error: 422 with Odoo's exception name
        draft = json2(client, *cases[-1][1:3], key).json()  # fmt: skip
        refused = json2(client, "/json/2/account.move/action_post", {"ids": draft}, key)
        assert refused.status_code == 422, refused.text
        assert refused.json()["name"] == "odoo.exceptions.UserError", refused.text
        assert client.get("/json/2/res.partner/search_read").status_code == 405
        # the method metadata clients read to name positional arguments
        doc = client.get("/doc-bearer/account.move.json",
                         headers={"Authorization": f"bearer {key}"}).json()  # fmt: skip
        assert doc["methods"]["create"]["api"] == ["model"]
        assert "api" not in doc["methods"]["action_post"]
        assert list(doc["methods"]["search_read"]["parameters"])[:2] == ["domain", "fields"]
    # the second witness: the posted entry in the database
    with psycopg.connect(PgCluster(sandbox.state_dir).dsn()) as conn:
        row = conn.execute("SELECT state FROM account_move WHERE id = %s", (move_id,)).fetchone()
    assert row == ("posted",)


@pytest.mark.parametrize("api", ["jsonrpc", "json2"])
def test_the_harness_client_speaks_either_api_with_the_same_answers(
    sandbox: LiveSandbox, api: str
) -> None:
    # what the transaction probe and the canary use (erp_api of the target)
    s = sandbox.status
    target = OdooTarget(s["entry_url"], s["database"], s["login"],
                        s["password"] if api == "jsonrpc" else "", s["ca_bundle"],
                        api=api, api_key=s["api_key"] if api == "json2" else "")  # type: ignore[arg-type]  # fmt: skip
    session = OdooSession(target, timeout_s=10)
    try:
        assert session.authenticate() > 0
        accounts = find_accounts(session)
        ref = f"harness-{api}-{secrets.token_hex(4)}"
        move = session.call("account.move", "create", [balanced_entry(accounts, ref)])
        assert isinstance(move, int)  # one id, whichever API
        session.call("account.move", "action_post", [[move]])
        [read] = session.call("account.move", "read", [[move]], {"fields": ["state", "ref"]})
        assert read["state"] == "posted" and read["ref"] == ref
        # a refused posting is the ERP's answer (the canary's "failed"), not a transport error
        draft = session.call("account.move", "create", [{
            **balanced_entry(accounts, f"{ref}-x"),
            "line_ids": [(0, 0, {"account_id": accounts.debit_account_id, "debit": 1.0,
                                 "credit": 0.0})],
        }])  # fmt: skip
        with pytest.raises(OdooError) as refused:
            session.call("account.move", "action_post", [[draft]])
        assert refused.value.name == "odoo.exceptions.UserError", refused.value
    finally:
        session.close()
    if api == "json2":
        wrong = OdooSession(OdooTarget(s["entry_url"], s["database"], s["login"], "",
                                       s["ca_bundle"], api="json2", api_key="0" * 40))  # fmt: skip
        with pytest.raises(OdooError) as denied:
            wrong.call("res.partner", "search_count", [[]])
        wrong.close()
        assert denied.value.code == 401 and denied.value.name.endswith("Unauthorized")
