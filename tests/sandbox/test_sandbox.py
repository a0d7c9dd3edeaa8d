"""The running sandbox, driven through its real HTTPS entry point (httpx) and its
database (psycopg): what issue 3 promises, end to end.

Tests that break something come last in the file and each restores what it broke.
"""

from __future__ import annotations

import os
import signal
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.platforms.sandbox.postgres.credentials import SUPERUSER
from ledgerdrill.platforms.sandbox.procs import port_open, read_pid, wait_until
from ledgerdrill.probes.odoo_rpc import OdooError, OdooSession, OdooTarget, find_accounts

# the ``sandbox`` fixture (tests/sandbox/conftest.py) is a running LiveSandbox
LiveSandbox = Any


def odoo(sandbox: LiveSandbox) -> OdooSession:
    s = sandbox.status
    return OdooSession(
        OdooTarget(s["entry_url"], s["database"], s["login"], s["password"], s["ca_bundle"]),
        timeout_s=10,
    )


def invoice(accounts: Any, ref: str, amount: float, *, balanced: bool = True) -> dict[str, Any]:
    return {
        "move_type": "entry",
        "journal_id": accounts.journal_id,
        "ref": ref,
        "line_ids": [
            (0, 0, {"account_id": accounts.debit_account_id, "debit": amount, "credit": 0}),
            (0, 0, {"account_id": accounts.credit_account_id, "debit": 0,
                    "credit": amount if balanced else amount - 1}),
        ],
    }  # fmt: skip


def test_status_gives_scripts_everything(sandbox: LiveSandbox) -> None:
    s = sandbox.status
    assert s["phase"] == "ready" and s["cold_start_s"] > 0
    assert s["entry_url"].startswith("https://127.0.0.1:")
    assert os.path.isfile(s["ca_bundle"])
    assert s["database"] and s["login"] and s["password"]
    assert set(s["regions"]) == {"primary", "dr"}
    processes = [p for n in s["nodes"] for p in n["processes"]]
    assert {p["name"] for p in processes} >= {"postgres", "redis", "erp-a-1", "dr-erp-1"}
    assert all(p["pid"] and p["state"] == "running" for p in processes)
    # the certificate covers localhost too, and Traefik routes any host name
    port = s["entry_url"].rsplit(":", 1)[1]
    health = httpx.get(
        f"https://localhost:{port}/web/health",
        verify=ssl.create_default_context(cafile=s["ca_bundle"]),
    )
    assert health.status_code == 200


def test_post_an_invoice_read_it_back_and_get_a_trial_balance(sandbox: LiveSandbox) -> None:
    session = odoo(sandbox)
    accounts = find_accounts(session, journal_code="INV", debit_code="121000")
    move_id = session.call("account.move", "create", [invoice(accounts, "t-inv-1", 125.5)])
    session.call("account.move", "action_post", [[move_id]])
    [move] = session.call("account.move", "read", [[move_id]], {"fields": ["name", "state", "ref"]})
    assert move["state"] == "posted" and move["ref"] == "t-inv-1"
    assert move["name"].startswith("INV/") and move["name"][-5:].isdigit()
    groups = session.call(
        "account.move.line", "read_group",
        [[("parent_state", "=", "posted")], ["debit:sum", "credit:sum"], ["account_id"]],
    )  # fmt: skip
    assert groups
    debit = sum(g["debit"] for g in groups)
    credit = sum(g["credit"] for g in groups)
    assert debit == pytest.approx(credit) and debit >= 125.5


def test_unbalanced_entry_is_refused_odoo_style(sandbox: LiveSandbox) -> None:
    session = odoo(sandbox)
    accounts = find_accounts(session)
    move_id = session.call(
        "account.move", "create", [invoice(accounts, "t-unbal", 10, balanced=False)]
    )
    with pytest.raises(OdooError) as refused:
        session.call("account.move", "action_post", [[move_id]])
    assert refused.value.name.startswith("odoo.exceptions.")
    assert (
        "balance" in refused.value.message.lower() or "unbalanced" in refused.value.message.lower()
    )


def test_posted_numbers_are_gapless_under_concurrent_posting(sandbox: LiveSandbox) -> None:
    def post(i: int) -> str:
        session = odoo(sandbox)
        accounts = find_accounts(session, journal_code="BNK")
        move_id = session.call("account.move", "create", [invoice(accounts, f"t-conc-{i}", 1)])
        session.call("account.move", "action_post", [[move_id]])
        [row] = session.call("account.move", "read", [[move_id]], {"fields": ["name"]})
        return str(row["name"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(post, range(40)))
    numbers = sorted(int(n.rsplit("/", 1)[1]) for n in names)
    assert len(set(numbers)) == 40
    assert numbers == list(range(numbers[0], numbers[0] + 40)), numbers


def test_synchronous_standby_reports_sync(sandbox: LiveSandbox) -> None:
    cluster = PgCluster(sandbox.state_dir)
    with psycopg.connect(cluster.dsn(SUPERUSER, dbname="postgres")) as conn:
        rows = conn.execute(
            "SELECT application_name, sync_state FROM pg_stat_replication"
        ).fetchall()
    states = dict(rows)
    assert "sync" in states.values(), states
    assert "async" in states.values(), states  # the DR replica


def test_a_replica_killed_with_sigkill_is_restarted(sandbox: LiveSandbox) -> None:
    pid_file = sandbox.state_dir / "nodes" / "erp-b" / "erp-b-1.pid"
    old = read_pid(pid_file)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: (read_pid(pid_file) or old) != old, timeout_s=10, what="a restart")
    new = read_pid(pid_file)
    port = next(r["port"] for r in sandbox.refresh()["erp"]["replicas"] if r["name"] == "erp-b-1")
    wait_until(lambda: port_open(port), timeout_s=15, what="the restarted replica to listen")
    assert new != old


def test_killing_the_primary_promotes_the_standby_and_writes_resume(sandbox: LiveSandbox) -> None:
    before = {m.role: m.name for m in sandbox.platform.database_topology().members}
    session = odoo(sandbox)
    accounts = find_accounts(session)  # before the crash: the lookup needs the database
    killed = sandbox.platform.crash_primary()
    assert killed == before["primary"]
    started = time.monotonic()

    def writes() -> bool:
        try:
            move_id = session.call(
                "account.move", "create", [invoice(accounts, f"t-fo-{time.monotonic()}", 1)]
            )
            session.call("account.move", "action_post", [[move_id]])
            return True
        except (OdooError, httpx.HTTPError):
            return False

    wait_until(writes, timeout_s=30, what="writes to succeed after the primary was killed",
               interval_s=0.2)  # fmt: skip
    took = time.monotonic() - started
    after = {m.role: m.name for m in sandbox.platform.database_topology().members}
    assert after["primary"] == before["sync-standby"], after
    print(f"\n[timing] primary killed -> writes through the entry point: {took:.2f}s")
    sandbox.platform.rejoin(killed)  # leave the cluster whole for whatever runs next
    members = {m.name: m.role for m in sandbox.platform.database_topology().members}
    assert members[killed] in {"sync-standby", "async-replica"}, members
