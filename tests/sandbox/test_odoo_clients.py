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
- ``Odooly`` (odooly): XML-RPC, ``ir.model`` ``search_read`` of ``model``/``transient``.

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
import odoolib  # type: ignore[import-untyped]
import odooly  # type: ignore[import-untyped]
import odoorpc  # type: ignore[import-untyped]
import psycopg
import pytest

from ledgerdrill.sandbox.postgres import PgCluster

LiveSandbox = Any  # tests/sandbox/conftest.py


@dataclass(frozen=True)
class Login:
    host: str
    port: int
    db: str
    login: str
    password: str


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


CLIENTS = {
    "odoorpc-jsonrpc": with_odoorpc,
    "odoo-client-lib-xmlrpc": with_odoolib("xmlrpcs"),
    "odoo-client-lib-jsonrpc": with_odoolib("jsonrpcs"),
    "erppeek-xmlrpc": with_erppeek,
    "odooly-xmlrpc": with_odooly,
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_client_library_logs_in_reads_partners_and_posts_a_balanced_entry(
    trusted: LiveSandbox, client: str
) -> None:
    s = trusted.status
    port = int(s["entry_url"].rsplit(":", 1)[1])
    ref = f"client-{client}-{secrets.token_hex(4)}"
    at = Login("127.0.0.1", port, s["database"], s["login"], s["password"])
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
