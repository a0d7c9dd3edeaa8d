"""The promoted CloudNativePG instance's own account of a promotion: its last replayed
commit, read by psql in its pod -- the database's witness of the data loss
(``measure/db_loss.py``, ``witness: replay-point``).

Why only that: the lost commits themselves are gone by the time anyone could count them.
CloudNativePG rewinds the old primary when it rejoins (pg_rewind), its last WAL segment
was never archived, and neither the Cluster status nor the instance manager's status
dates a commit (LSNs and timelines only). What the promoted instance keeps is
``pg_last_xact_replay_timestamp()``: the commit time of the last transaction it replayed,
static once recovery ends. Every lost commit came after it.

How: ``psql -U postgres`` in the instance's ``postgres`` container, what
``kubectl cnpg psql`` runs (``internal/cmd/plugin/psql/psql.go``), asking for that
timestamp and the server's ``clock_timestamp()`` in the same statement. Their difference
is measured on the database's clocks (the commit's node and the promoted node: NTP keeps
them within milliseconds; one host clock on kind), and is placed on this machine's clock
at the moment of the read, known to within half the exec's round trip.

A failover is watched in a thread of its own, from the crash until the operator names a
new primary (bounded by ``wait_timeout``), so the fault never waits for it; the drill
reads the events through ``events_between``, which waits for watches still running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ledgerdrill.errors import PlatformError
from ledgerdrill.measure.db_loss import PROMOTED_MONO_NS, PROMOTION_EVIDENCE, REPLAY_POINT
from ledgerdrill.platforms.kubernetes.api import Kube
from ledgerdrill.platforms.kubernetes.podexec import exec_in_pod
from ledgerdrill.timeline import Event, Instant

REPLAY_SQL = (
    "SELECT extract(epoch FROM pg_last_xact_replay_timestamp()),"
    " extract(epoch FROM clock_timestamp())"
)
PSQL = ["psql", "-U", "postgres", "-X", "-A", "-t", "-q", "-F", "|", "-c", REPLAY_SQL]
CONTAINER = "postgres"  # CloudNativePG's specs.PostgresContainerName


def _now() -> Instant:
    return Instant(time.monotonic_ns(), datetime.now(UTC))


def replay_point_facts(
    kube: Kube, namespace: str, pod: str, *, old_primary: str, timeout_s: float
) -> dict[str, Any]:
    """The attributes of one ``promotion-data-loss`` event (``db_loss`` reads them)."""
    facts: dict[str, Any] = {"witness": REPLAY_POINT, "old_primary": old_primary}
    before = time.monotonic_ns()
    try:
        result = exec_in_pod(kube, namespace, pod, CONTAINER, PSQL, timeout_s=timeout_s)
    except PlatformError as exc:
        return facts | {"error": str(exc)}
    after = time.monotonic_ns()
    if result.exit_code != 0:
        said = result.stderr.strip()[:300] or result.stdout.strip()[:300]
        return facts | {"error": f"psql in {pod} exited {result.exit_code}: {said}"}
    replayed_text, _, now_text = result.stdout.strip().partition("|")
    try:
        server_now = float(now_text)
        replayed = float(replayed_text) if replayed_text else None
    except ValueError:
        return facts | {"error": f"psql in {pod} answered {result.stdout.strip()[:200]!r}"}
    return facts | {
        "last_replayed_commit": (
            None if replayed is None else datetime.fromtimestamp(replayed, UTC).isoformat()
        ),
        "replay_age_s": None if replayed is None else round(server_now - replayed, 6),
        "read_mono_ns": (before + after) // 2,
        "read_error_s": round((after - before) / 2e9, 6),
    }


class PromotionLog:
    """The promotions this backend witnessed, as timeline events, and the watches still
    running (a failover is promoted by the operator some time after the crash)."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._watches: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.closed = threading.Event()  # set by the backend's close: watches end early
        self.failures: list[str] = []  # a watch that broke, with why (none is expected)

    def record(self, promoted: str, promoted_mono_ns: int, facts: dict[str, Any]) -> None:
        attributes = facts | {PROMOTED_MONO_NS: promoted_mono_ns}
        with self._lock:
            self._events.append(Event(PROMOTION_EVIDENCE, promoted, _now(), attributes))

    def watch(self, name: str, work: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception as exc:  # a thread's exception would reach nobody: keep it
                with self._lock:
                    self.failures.append(f"{name}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=guarded, name=f"promotion-witness-{name}", daemon=True)
        with self._lock:
            self._watches = [t for t in self._watches if t.is_alive()] + [thread]
        thread.start()

    def events_between(self, start: Instant, end: Instant, wait_s: float) -> list[Event]:
        """Events in [start, end], after the running watches ended (at most ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            watches = list(self._watches)
        for thread in watches:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return [e for e in self._events if start.mono_ns <= e.at.mono_ns <= end.mono_ns]

    def close(self) -> None:
        self.closed.set()
