"""The database's own account of a promotion's data loss (issue 32, step 2).

At every promotion the cluster notes, from PostgreSQL itself:

- the promoted server's last replayed commit (``pg_last_xact_replay_timestamp()``, which
  stays at the last transaction applied during recovery once recovery has ended) and
  the switch point of its new timeline (its history file);
- whether it was the old primary's synchronous standby when the old primary stopped
  (the old primary's ``postgresql.auto.conf``, where ``ALTER SYSTEM`` keeps
  ``synchronous_standby_names``): then no commit it lacks was ever acknowledged --
  with ``synchronous_commit = on`` a commit is acknowledged only once that standby has
  flushed it;
- then, in the background (a promotion must not wait for it), every commit the old
  primary wrote after the switch point, read from its WAL (``walscan``).

The result is one ``promotion-data-loss`` event. Nothing may rewind, rebuild or start
the old primary while its WAL is read: ``wait`` is called first by whoever does.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerdrill.measure.db_loss import PROMOTED_MONO_NS
from ledgerdrill.platforms.sandbox.postgres import walscan
from ledgerdrill.platforms.sandbox.postgres.server import PgServer, application_name

EventSink = Callable[[str, str, dict[str, Any]], None]
SCAN_WAIT_S = 60.0
_SYNC_NAMES = re.compile(r"^\s*synchronous_standby_names\s*=\s*'(?P<value>[^']*)'", re.M)


def configured_sync_standby(data_dir: Path) -> str:
    """``synchronous_standby_names`` as ``ALTER SYSTEM`` last wrote it (``""``: none)."""
    try:
        text = (data_dir / "postgresql.auto.conf").read_text()
    except OSError:
        return ""
    found = _SYNC_NAMES.findall(text)
    return found[-1] if found else ""


@dataclass(frozen=True)
class PromotionFacts:
    """What is read at the promotion itself, before the old primary's WAL is scanned."""

    promoted: str
    old_primary: str
    was_sync_standby: bool
    timeline: int
    parent_timeline: int
    switch_lsn: int
    last_replayed_commit: datetime | None
    promoted_mono_ns: int  # when the promotion ended (the event itself comes after the scan)


class PromotionWitness:
    def __init__(self, emit: EventSink | None = None) -> None:
        self.emit = emit
        self._scans: list[threading.Thread] = []
        self._lock = threading.Lock()

    def before(self, old: PgServer, promoted: PgServer) -> bool:
        """Read before promoting: was ``promoted`` the synchronous standby of ``old``?"""
        return f"({application_name(promoted.name)})" in configured_sync_standby(old.data_dir)

    def after(self, old: PgServer, promoted: PgServer, was_sync_standby: bool) -> None:
        """Read the promoted server's facts now; scan the old primary's WAL in the
        background and emit what was lost. Never raises: a witness that cannot read
        says so in its event."""
        try:
            facts = self._facts(old, promoted, was_sync_standby)
        except Exception as exc:  # a witness must never fail the failover
            # (a connection refused by the just-promoted server is psycopg's own error)
            self._send(promoted.name, {"old_primary": old.name, "error": _say(exc)})
            return
        scan = threading.Thread(
            target=self._scan, args=(old, facts), name=f"walscan-{old.name}", daemon=True
        )
        with self._lock:
            self._scans = [t for t in self._scans if t.is_alive()] + [scan]
        scan.start()

    def wait(self, timeout_s: float = SCAN_WAIT_S) -> None:
        """Until every scan in progress has finished (before touching an old primary)."""
        with self._lock:
            scans = list(self._scans)
        for scan in scans:
            scan.join(timeout_s)

    # -- inside --------------------------------------------------------------------------
    @staticmethod
    def _facts(old: PgServer, promoted: PgServer, was_sync_standby: bool) -> PromotionFacts:
        timeline = promoted.timeline_id()
        history = promoted.data_dir / "pg_wal" / f"{timeline:08X}.history"
        parent, switch = walscan.timeline_switch(history.read_text())
        replayed = promoted.query("SELECT pg_last_xact_replay_timestamp()")[0][0]
        return PromotionFacts(
            promoted=promoted.name,
            old_primary=old.name,
            was_sync_standby=was_sync_standby,
            timeline=timeline,
            parent_timeline=parent,
            switch_lsn=switch,
            last_replayed_commit=replayed if isinstance(replayed, datetime) else None,
            promoted_mono_ns=time.monotonic_ns(),
        )

    def _scan(self, old: PgServer, facts: PromotionFacts) -> None:
        attributes: dict[str, Any] = {
            "old_primary": facts.old_primary,
            "promoted_was_sync_standby": facts.was_sync_standby,
            "timeline": facts.timeline,
            "switch_lsn": walscan.format_lsn(facts.switch_lsn),
            "last_replayed_commit": _iso(facts.last_replayed_commit),
            PROMOTED_MONO_NS: facts.promoted_mono_ns,
        }
        try:
            commits = walscan.commits_after(old, facts.parent_timeline, facts.switch_lsn)
        except Exception as exc:  # whatever broke, the event says so
            attributes["error"] = _say(exc)
        else:
            attributes |= {
                "lost_commits": len(commits),
                "first_lost_commit": _iso(commits[0].at) if commits else None,
                "newest_lost_commit": _iso(max(c.at for c in commits)) if commits else None,
            }
        self._send(facts.promoted, attributes)

    def _send(self, promoted: str, attributes: dict[str, Any]) -> None:
        if self.emit is not None:
            with contextlib.suppress(Exception):  # a broken sink must not stop a failover
                self.emit("promotion-data-loss", promoted, attributes)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
