"""PostgreSQL probes: can I write, how far behind are the standbys, who is primary.

Each query runs on psycopg's async connection under one ``asyncio.wait_for`` deadline
(connect + query): libpq's ``connect_timeout`` cannot go below 2 s and a *frozen*
server accepts TCP and then never answers, so only a hard deadline keeps a probe
within its interval. Each probe owns its event loop (one sampler thread per probe).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import psycopg

from ledgerdrill.timeline import Sample, Timeline

UNREPLICATED = "might not have been replicated"


class _AsyncQuery:
    """Queries over one kept-open connection per DSN (opening one costs a SCRAM handshake:
    most of a probe's CPU), dropped and reopened after any error or timeout, so a
    failover or a frozen server is seen exactly as a fresh client would see it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        # DSN -> (open connection, the notices it received during the current query)
        self._conns: dict[str, tuple[psycopg.AsyncConnection[Any], list[str]]] = {}

    def run(
        self, conninfo: str, sql: str, timeout_s: float
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Rows and the server's notices, or raise ``TimeoutError``/``psycopg.Error``."""
        try:
            return self._loop.run_until_complete(
                asyncio.wait_for(self._run(conninfo, sql), timeout_s)
            )
        except BaseException:
            self._drop(conninfo)
            raise

    async def _run(self, conninfo: str, sql: str) -> tuple[list[tuple[Any, ...]], list[str]]:
        found = self._conns.get(conninfo)
        if found is None or found[0].closed:
            # autocommit: each probe's query is one statement, its own transaction, so its
            # commit (which waits for the synchronous standby when it wrote an xid) ends
            # the same round trip -- a separate COMMIT was a second round trip per sample
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            notices: list[str] = []
            conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary or "")))
            found = self._conns[conninfo] = (conn, notices)
        conn, notices = found
        notices.clear()
        cur = await conn.execute(sql)
        rows = await cur.fetchall() if cur.description else []
        return rows, list(notices)

    def _drop(self, conninfo: str) -> None:
        found = self._conns.pop(conninfo, None)
        if found is not None:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.wait_for(found[0].close(), 0.5))

    def close(self) -> None:
        for conninfo in list(self._conns):
            self._drop(conninfo)
        self._loop.close()


def _failed(name: str, timeline: Timeline, start: Any, exc: BaseException) -> Sample:
    took = timeline.clock.now().seconds_since(start)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Sample(name, start, False, took, f"{type(exc).__name__}: {text}")


class PgWriteProbe:
    """A read-write session commits a transaction that holds a transaction id (so its
    commit waits for the synchronous standby, as a ledger write would) -- without
    creating anything in the customer's database."""

    SQL = "SELECT pg_current_xact_id()::text, inet_server_port(), pg_is_in_recovery()"

    def __init__(self, name: str, dsn: str, *, counts_for_rto: bool = True) -> None:
        self.name = name
        self.dsn = dsn
        self.counts_for_rto = counts_for_rto
        self._query = _AsyncQuery()

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        try:
            rows, notices = self._query.run(self.dsn, self.SQL, timeout_s)
        except (TimeoutError, psycopg.Error, OSError) as exc:
            return _failed(self.name, timeline, start, exc)
        took = timeline.clock.now().seconds_since(start)
        _xid, port, in_recovery = rows[0]
        if in_recovery:
            return Sample(self.name, start, False, took, f"port {port} is read-only")
        if any(UNREPLICATED in n for n in notices):
            return Sample(
                self.name, start, False, took, "commit not confirmed by the synchronous standby"
            )
        return Sample(self.name, start, True, took, f"primary on port {port}")


class PgReplicationProbe:
    """Replication state and lag per standby, as the primary sees it. Failed when fewer
    than ``min_sync`` standbys are synchronous or any lags more than ``max_lag_s``."""

    SQL = """
        SELECT application_name, state, sync_state,
               pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
               extract(epoch FROM coalesce(replay_lag, '0'::interval))::float8
          FROM pg_stat_replication ORDER BY application_name"""

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        min_sync: int = 1,
        max_lag_s: float = 30.0,
        counts_for_rto: bool = False,
    ) -> None:
        self.name = name
        self.dsn = dsn
        self.min_sync = min_sync
        self.max_lag_s = max_lag_s
        self.counts_for_rto = counts_for_rto
        self._query = _AsyncQuery()

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        try:
            rows, _ = self._query.run(self.dsn, self.SQL, timeout_s)
        except (TimeoutError, psycopg.Error, OSError) as exc:
            return _failed(self.name, timeline, start, exc)
        took = timeline.clock.now().seconds_since(start)
        metrics: dict[str, float] = {}
        parts = []
        sync = 0
        worst_lag = 0.0
        for app, state, sync_state, lag_bytes, lag_s in rows:
            metrics[f"lag_bytes:{app}"] = float(lag_bytes or 0)
            metrics[f"lag_s:{app}"] = float(lag_s or 0.0)
            worst_lag = max(worst_lag, float(lag_s or 0.0))
            sync += sync_state == "sync" and state == "streaming"
            parts.append(f"{app} {state}/{sync_state} lag {lag_bytes or 0}B {lag_s or 0:.2f}s")
        ok = sync >= self.min_sync and worst_lag <= self.max_lag_s
        detail = "; ".join(parts) or "no standby connected"
        return Sample(self.name, start, ok, took, detail, metrics)


class PgPrimaryProbe:
    """Which member is primary, and on which timeline. A change of primary or timeline
    is an event on the timeline; two primaries (split brain) or none is a failure."""

    # the timeline id is the first 8 hex digits of the current WAL file's name
    SQL = """SELECT pg_is_in_recovery(),
                    CASE WHEN pg_is_in_recovery() THEN 0 ELSE
                      ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
                    END"""

    def __init__(
        self, name: str, members: Mapping[str, str], *, counts_for_rto: bool = False
    ) -> None:
        self.name = name
        self.members = dict(members)  # member name -> DSN
        self.counts_for_rto = counts_for_rto
        self._query = _AsyncQuery()
        self._last: tuple[str, int] | None = None

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        share = timeout_s / max(1, len(self.members))
        primaries: list[tuple[str, int]] = []
        for member, dsn in self.members.items():
            with contextlib.suppress(TimeoutError, psycopg.Error, OSError):
                rows, _ = self._query.run(dsn, self.SQL, share)
                if not rows[0][0]:
                    primaries.append((member, int(rows[0][1])))
        took = timeline.clock.now().seconds_since(start)
        if len(primaries) != 1:
            what = "no primary" if not primaries else f"split brain: {primaries}"
            return Sample(self.name, start, False, took, what)
        current = primaries[0]
        if self._last is not None and current != self._last:
            timeline.event(
                "db.primary-changed",
                current[0],
                at=start,
                previous=self._last[0],
                timeline=current[1],
                previous_timeline=self._last[1],
            )
        self._last = current
        return Sample(
            self.name,
            start,
            True,
            took,
            f"primary {current[0]} timeline {current[1]}",
            {"timeline": float(current[1])},
        )
