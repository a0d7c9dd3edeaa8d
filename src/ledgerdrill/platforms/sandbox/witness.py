"""An independent witness of the sandbox's health, for "left as it was found".

The harness judges "restored" by reading the platform's shape through its own
capability protocols (``platforms.shape``). This module asks the real programs instead,
sharing none of that code: the operating system for the node processes, each PostgreSQL
server by SQL for its role and its replication, the ERP's own connections as PostgreSQL
sees them, the ERP over verified HTTPS for a real posting, and the ledger tables by SQL
for the finance invariants. The interrupt trials and the sandbox tests use it after
every drill; ``ledgerdrill sandbox verify`` prints it for people.

Checks (each problem one line):

- every node's processes alive and none stopped (frozen);
- exactly one of the HA pair writable (``pg_is_in_recovery()`` false), the other
  streaming to it as the synchronous standby (``pg_stat_replication.sync_state``), the
  DR replica streaming (``pg_stat_wal_receiver.status``);
- every ERP replica connected to that primary (``pg_stat_activity.application_name``),
  and no restored server left running;
- a login and a balanced entry posted through the entry point over HTTPS, certificate
  verified against the sandbox CA, found posted by SQL on the primary;
- by SQL on the primary: every posted entry balances, no reference is posted twice,
  sequence numbers are gapless per journal and year.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import psycopg

from ledgerdrill.measure.invariants import PostedEntry, check_invariants
from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.nodes import NodeProcesses
from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.platforms.sandbox.postgres.credentials import APP_DATABASE, SUPERUSER
from ledgerdrill.platforms.sandbox.topology import Topology, default_topology
from ledgerdrill.probes.odoo_rpc import OdooSession, OdooTarget, balanced_entry, find_accounts

ERP_APPLICATION = "ledgerdrill-erp-"


@dataclass
class WitnessReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was found healthy, for people
    waited_s: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.problems


def _scalar(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        return list(conn.execute(sql).fetchall())


class SandboxWitness:
    def __init__(self, state_dir: Path, topology: Topology | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.topology = topology or default_topology()
        self.cluster = PgCluster(self.state_dir)

    def _dsn(self, member: str, dbname: str = APP_DATABASE) -> str:
        return self.cluster.server_dsn(member, SUPERUSER, dbname=dbname)

    # -- processes ---------------------------------------------------------------------
    def _processes(self, report: WitnessReport) -> None:
        for node in self.topology.nodes:
            pids = NodeProcesses(self.state_dir, node.name).pids()
            if not pids:
                report.problems.append(f"node {node.name}: no processes recorded")
            for name, pid in pids.items():
                try:
                    status = psutil.Process(pid).status()
                except psutil.NoSuchProcess:
                    report.problems.append(f"node {node.name}: {name} (pid {pid}) is not running")
                    continue
                if status in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
                    report.problems.append(f"node {node.name}: {name} (pid {pid}) is {status}")
        if not report.problems:
            report.checked.append(f"{len(self.topology.nodes)} nodes' processes alive")

    # -- databases ----------------------------------------------------------------------
    def _database(self, report: WitnessReport) -> str | None:
        """The writable HA member (None when there is not exactly one)."""
        writable = []
        for name in self.cluster.ha_pair:
            try:
                if _scalar(self._dsn(name, "postgres"), "SELECT NOT pg_is_in_recovery()"):
                    writable.append(name)
            except psycopg.Error as exc:
                report.problems.append(f"database {name} does not answer: {_first_line(exc)}")
        if len(writable) != 1:
            report.problems.append(
                f"{len(writable)} writable HA members ({', '.join(writable) or 'none'}); "
                "exactly one is required"
            )
            return None
        primary = writable[0]
        standby = next(n for n in self.cluster.ha_pair if n != primary)
        dr = self.cluster.dr_member
        replication = {
            str(name): (str(state), str(sync))
            for name, state, sync in _rows(
                self._dsn(primary, "postgres"),
                "SELECT application_name, state, sync_state FROM pg_stat_replication",
            )
        }
        sync = [n for n, (state, mode) in replication.items()
                if state == "streaming" and mode in ("sync", "quorum")]  # fmt: skip
        if not sync:
            report.problems.append(
                f"no synchronous standby streams to the primary {primary} "
                f"(pg_stat_replication: {replication or 'empty'})"
            )
        try:
            receiving = _scalar(self._dsn(standby, "postgres"),
                                "SELECT status FROM pg_stat_wal_receiver")  # fmt: skip
            if receiving != "streaming":
                report.problems.append(f"the standby {standby} is not streaming ({receiving})")
            dr_status = _scalar(
                self._dsn(dr, "postgres"), "SELECT status FROM pg_stat_wal_receiver"
            )
            if dr_status != "streaming":
                report.problems.append(f"the DR replica {dr} is not streaming ({dr_status})")
        except psycopg.Error as exc:
            report.problems.append(f"a standby does not answer: {_first_line(exc)}")
        if not report.problems:
            report.checked.append(
                f"one primary ({primary}), synchronous standby {standby} and DR replica "
                f"{dr} streaming"
            )
        return primary

    def _erp_connections(self, report: WitnessReport, primary: str) -> None:
        connected = {
            str(row[0])[len(ERP_APPLICATION) :]
            for row in _rows(
                self._dsn(primary, "postgres"),
                "SELECT DISTINCT application_name FROM pg_stat_activity "
                f"WHERE application_name LIKE '{ERP_APPLICATION}%'",
            )
        }
        replicas = [n.name for n in self.topology.with_role("erp")]
        # a replica's pool keeps at least one connection open to the database it uses
        missing = [r for r in replicas if not any(c.startswith(r) for c in connected)]
        if missing:
            report.problems.append(
                f"ERP replicas not connected to the HA primary {primary}: "
                + ", ".join(f"{r} ({self._where(r)})" for r in missing)
            )
        restored = self._restored_running()
        if restored:
            report.problems.append(f"restored servers still running: {', '.join(restored)}")
        if not missing and not restored:
            report.checked.append(f"{len(replicas)} ERP replicas connected to {primary}")

    def _where(self, replica: str) -> str:
        """Where an ERP replica's connections are instead, for the message."""
        found = []
        for member in (*self.cluster.ha_pair, self.cluster.dr_member):
            if member in found:
                continue
            try:
                count = _scalar(
                    self._dsn(member, "postgres"),
                    "SELECT count(*) FROM pg_stat_activity "
                    f"WHERE application_name LIKE '{ERP_APPLICATION}{replica}%'",
                )
            except psycopg.Error:
                continue
            if count:
                found.append(f"{count} on {member}")
        return "connected to " + ", ".join(found) if found else "no connection anywhere"

    def _restored_running(self) -> list[str]:
        """Restored servers (PITR targets) whose postmaster still runs."""
        known = {*self.cluster.ha_pair, self.cluster.dr_member}
        running = []
        for pid_file in sorted((self.state_dir / "postgres").glob("*/data/postmaster.pid")):
            name = pid_file.parent.parent.name
            if name in known:
                continue
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if psutil.pid_exists(pid):
                running.append(name)
        return running

    # -- the ERP and the ledger ---------------------------------------------------------
    def _posting(self, report: WitnessReport, primary: str) -> None:
        status = control.read_status(self.state_dir) or {}
        if status.get("phase") != "ready":
            report.problems.append(f"the sandbox is {status.get('phase', 'not running')}")
            return
        target = OdooTarget(
            status["entry_url"], status["database"], status["login"], status["password"],
            status["ca_bundle"],
        )  # fmt: skip
        ref = f"witness-{uuid.uuid4().hex[:12]}"
        session = OdooSession(target, timeout_s=10.0)
        try:
            session.authenticate()
            accounts = find_accounts(session)
            move = session.call("account.move", "create", [balanced_entry(accounts, ref)])
            session.call(
                "account.move", "action_post", [move if isinstance(move, list) else [move]]
            )
        except Exception as exc:  # whatever failed, the platform cannot post: that is the finding
            report.problems.append(f"posting through the entry point failed: {_first_line(exc)}")
            return
        finally:
            session.close()
        found = _scalar(
            self._dsn(primary),
            f"SELECT count(*) FROM account_move WHERE ref = '{ref}' AND state = 'posted'",
        )
        if found != 1:
            report.problems.append(f"the entry posted over HTTPS ({ref}) is not on {primary}")
        else:
            report.checked.append(f"posted {ref} over verified HTTPS, found on {primary} by SQL")

    def _ledger(self, report: WitnessReport, primary: str) -> None:
        rows = _rows(
            self._dsn(primary),
            "SELECT m.name, m.ref, m.state, j.code, "
            "COALESCE(SUM(l.debit), 0), COALESCE(SUM(l.credit), 0) "
            "FROM account_move m JOIN account_journal j ON j.id = m.journal_id "
            "LEFT JOIN account_move_line l ON l.move_id = m.id "
            "WHERE m.name <> '/' GROUP BY m.id, j.code",
        )
        # every named entry counts for the numbering (a cancelled one keeps its number);
        # only posted ones must balance and carry unique references
        named = [
            PostedEntry(str(n), None, Decimal(0), Decimal(0), str(j)) for n, _, _, j, _, _ in rows
        ]
        posted = [
            PostedEntry(str(n), r, Decimal(d), Decimal(c), str(j))
            for n, r, state, j, d, c in rows
            if state == "posted"
        ]
        numbering = check_invariants(named)
        balance = check_invariants(posted, full_sequence=False)
        problems = [*numbering.sequence_gaps, *numbering.duplicate_names]
        problems += [f"{len(balance.unbalanced)} unbalanced posted entries"] * bool(
            balance.unbalanced
        )
        problems += [f"references posted twice: {balance.duplicate_refs}"] * bool(
            balance.duplicate_refs
        )
        report.problems += [f"ledger: {p}" for p in problems]
        if not problems:
            report.checked.append(
                f"ledger by SQL: {len(posted)} posted entries balanced, numbering gapless"
            )

    # -- all of it -----------------------------------------------------------------------
    def check(self) -> WitnessReport:
        report = WitnessReport()
        self._processes(report)
        try:
            primary = self._database(report)
            if primary is not None:
                self._erp_connections(report, primary)
                self._posting(report, primary)
                self._ledger(report, primary)
        except psycopg.Error as exc:
            report.problems.append(f"SQL check failed: {_first_line(exc)}")
        return report

    def await_healthy(
        self,
        timeout_s: float,
        *,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> WitnessReport:
        """Check until healthy or ``timeout_s`` passes (a standby being rebuilt, a replica
        reconnecting); the last report stands."""
        started = clock()
        while True:
            report = self.check()
            report.waited_s = clock() - started
            if report.healthy or report.waited_s >= timeout_s:
                return report
            time.sleep(interval_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
