"""Transactions against the sandbox database, and how their failures reach clients.

``Database.run(fn)`` runs ``fn(conn)`` in one transaction and commits it; it turns every
database failure into an Odoo-style error and, crucially, refuses to call a commit a
success when PostgreSQL only committed locally (the synchronous standby never confirmed).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from ledgerdrill.platforms.sandbox.erp.errors import (
    CommitNotConfirmed,
    OdooException,
    ServerError,
    ValidationError,
)
from ledgerdrill.platforms.sandbox.postgres import is_unreplicated_commit_notice

T = TypeVar("T")
log = logging.getLogger("ledgerdrill.erp.db")

STATEMENT_TIMEOUT_MS = 5000  # a stuck query ends as an error, never a hung request
LOCK_TIMEOUT_MS = 4000
# A replica that hangs mid-transaction (a frozen node) holds its row locks -- among them
# the journal's sequence row, which every posting in that journal needs: without this,
# posting stalls for as long as the node hangs. Found by the node-freeze drill.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 3000
CONCURRENCY_RETRIES = 5  # as Odoo's service.model.retrying for serialization/deadlock
KEEP_WARM_INTERVAL_S = 2.0


def _pg_name(exc: BaseException) -> str:
    # clients of a real Odoo see psycopg2 class names; keep that shape
    return f"psycopg2.errors.{type(exc).__name__}"


class Database:
    def __init__(self, dsn: str, replica: str) -> None:
        # The pool's background reconnects back off exponentially (1 s, 2 s, 4 s...), so
        # after a long outage the first retry that would find the new primary can be many
        # seconds away. Retry every ~0.5 s instead: requests succeed again soon after a
        # failover. (Process-wide class attributes; this process runs one pool.)
        AttemptWithBackoff.INITIAL_DELAY = 0.5
        AttemptWithBackoff.DELAY_BACKOFF = 1.0
        self.pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=8,
            timeout=2,
            open=False,
            # a connection to a dead or demoted primary is dropped before use, and the
            # pool reconnects through the multi-host DSN, which finds the new primary
            check=ConnectionPool.check_connection,
            reconnect_timeout=3600,  # the database comes back (failover, restart)
            kwargs={
                "autocommit": False,
                "application_name": f"ledgerdrill-erp-{replica}"[:63],
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
                f" -c lock_timeout={LOCK_TIMEOUT_MS}"
                f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}",
            },
            name=f"erp-{replica}",
        )
        self._stopped = threading.Event()
        self._keeper = threading.Thread(target=self._keep_warm, name="pool-keeper", daemon=True)

    def open(self) -> None:
        self.pool.open(wait=False)  # start serving even while the database is down
        self._keeper.start()

    def close(self) -> None:
        self._stopped.set()
        self.pool.close(timeout=2)

    def _keep_warm(self) -> None:
        """The pool notices a connection the server dropped only when a request takes
        it: a replica without traffic -- the DR region's, after a fail-back -- would sit
        on a dead connection until its first request after the next failover, and would
        not be the warm standby the topology promises (found by the interrupt trials'
        SQL witness: "dr-erp: no connection anywhere"). Check the idle connections every
        few seconds; the pool replaces the dead ones through the multi-host DSN."""
        while not self._stopped.wait(KEEP_WARM_INTERVAL_S):
            try:
                self.pool.check()
            except Exception as exc:  # the database may be down: the pool keeps trying
                log.debug("pool check failed: %s", exc)

    def ping(self) -> bool:
        try:
            self.run(lambda conn: conn.execute("SELECT 1").fetchone(), write=False)
        except OdooException:
            return False
        return True

    def run(
        self, fn: Callable[[psycopg.Connection[tuple[Any, ...]]], T], *, write: bool = True
    ) -> T:
        for attempt in range(CONCURRENCY_RETRIES + 1):
            try:
                return self._once(fn, write)
            except pg_errors.TransactionRollback as exc:
                # rolled back before anything committed: retrying is safe (Odoo does too)
                if attempt == CONCURRENCY_RETRIES:
                    raise ServerError(str(exc), _pg_name(exc)) from None
                time.sleep(random.uniform(0.01, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def _once(self, fn: Callable[[psycopg.Connection[tuple[Any, ...]]], T], write: bool) -> T:
        warnings: list[psycopg.errors.Diagnostic] = []

        def on_notice(diag: psycopg.errors.Diagnostic) -> None:
            if is_unreplicated_commit_notice(diag):
                warnings.append(diag)

        try:
            with self.pool.connection() as conn:
                conn.add_notice_handler(on_notice)
                try:
                    result = self._in_transaction(conn, fn, write, warnings)
                finally:
                    if not conn.closed:
                        conn.remove_notice_handler(on_notice)
                return result
        except PoolTimeout:
            raise ServerError(
                "database unavailable: no connection within 2 s", "psycopg2.OperationalError"
            ) from None

    def _in_transaction(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        fn: Callable[[psycopg.Connection[tuple[Any, ...]]], T],
        write: bool,
        warnings: list[psycopg.errors.Diagnostic],
    ) -> T:
        try:
            result = fn(conn)
        except BaseException as exc:
            self._abort(conn, exc)
            if isinstance(exc, OdooException | pg_errors.TransactionRollback):
                raise
            if isinstance(exc, psycopg.IntegrityError):
                raise ValidationError(f"The operation cannot be completed: {exc}") from None
            if isinstance(exc, psycopg.Error):
                raise ServerError(str(exc).strip(), _pg_name(exc)) from None
            raise
        try:
            conn.commit()
        except pg_errors.TransactionRollback:
            raise
        except psycopg.IntegrityError as exc:  # a deferred constraint failed at COMMIT
            raise ValidationError(f"The operation cannot be completed: {exc}") from None
        except psycopg.OperationalError as exc:
            self._abort(conn, exc)
            if write:
                # the server may have committed before the connection broke
                raise CommitNotConfirmed(f"connection lost during COMMIT ({exc})") from None
            raise ServerError(str(exc).strip(), _pg_name(exc)) from None
        if warnings and write:
            log.warning("commit acknowledged locally only: %s", warnings[0].message_primary)
            raise CommitNotConfirmed(
                "committed locally but might not have been replicated"
                " (the wait for the synchronous standby was cancelled)"
            )
        return result

    @staticmethod
    def _abort(conn: psycopg.Connection[tuple[Any, ...]], exc: BaseException) -> None:
        """Roll back; close the connection when it is broken or points at a server that
        can no longer take writes, so the pool replaces it (finding the new primary)."""
        replace = isinstance(
            exc,
            psycopg.OperationalError | pg_errors.ReadOnlySqlTransaction | pg_errors.AdminShutdown,
        )
        if not replace:
            try:
                conn.rollback()
                return
            except psycopg.Error:
                pass
        conn.close()
