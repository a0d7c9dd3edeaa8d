"""The HA controller's health probe: one short connection, one query, a hard deadline.

A crashed server refuses the connection at once, but a *frozen* one (SIGSTOP: a hang,
like a network partition) accepts the TCP handshake in the kernel and then never
answers. libpq's ``connect_timeout`` cannot go below 2 s and covers only the connect,
not a query on a server that freezes afterwards. So the probe runs on psycopg's async
connection under ``asyncio.wait_for``: the deadline covers connect + query, at any
granularity, and a hung probe is abandoned (its socket closed), never left blocking.

The one query also returns what the controller needs about the synchronous standby
(``pg_stat_replication``), so a healthy primary costs one round trip per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import psycopg

QUERY = """
SELECT pg_is_in_recovery(),
       current_setting('synchronous_standby_names'),
       (SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep')::int,
       coalesce((SELECT json_agg(json_build_array(
                    application_name, state, sync_state,
                    extract(epoch FROM now() - reply_time)))
                 FROM pg_stat_replication), '[]'::json)
"""


@dataclass(frozen=True)
class StandbyHealth:
    state: str  # streaming | catchup | startup | ...
    sync_state: str  # sync | async | potential | quorum
    reply_age_s: float | None  # since the standby last reported; None when unknown


@dataclass(frozen=True)
class Health:
    """What one successful probe saw."""

    in_recovery: bool
    synchronous_standby_names: str
    waiting_commits: int  # sessions whose COMMIT waits for the synchronous standby
    standbys: dict[str, StandbyHealth]  # by application name


class ProbeFailed(Exception):
    """The server did not answer in time, refused, or failed the query."""


class Prober:
    """Probes with a hard deadline; owns an event loop (use from one thread)."""

    def __init__(self, timeout_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()

    def check(self, conninfo: str) -> Health:
        try:
            return self._loop.run_until_complete(
                asyncio.wait_for(self._check(conninfo), self.timeout_s)
            )
        except TimeoutError:
            raise ProbeFailed(f"no answer within {self.timeout_s:g}s") from None
        except (psycopg.Error, OSError) as exc:
            raise ProbeFailed(str(exc).strip().splitlines()[0] if str(exc) else repr(exc)) from exc

    @staticmethod
    async def _check(conninfo: str) -> Health:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            cur = await conn.execute(QUERY)
            row = await cur.fetchone()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        assert row is not None
        return _health(row)

    def close(self) -> None:
        self._loop.close()


def _health(row: tuple[Any, ...]) -> Health:
    standbys = {
        str(name): StandbyHealth(
            str(state), str(sync_state), float(age) if age is not None else None
        )
        for name, state, sync_state, age in row[3]
    }
    return Health(bool(row[0]), str(row[1]), int(row[2]), standbys)
