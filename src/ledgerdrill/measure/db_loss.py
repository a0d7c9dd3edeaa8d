"""The database's witness of data loss at a promotion, and the RPO both witnesses give.

The canary sees only its own writes, and only since it began: its RPO can never exceed
its lifetime (``Loss.rpo_censored``). The database sees every writer. From a promotion's
facts (``sandbox/postgres/promotion_witness.py``; a backend that cannot read them has no
such figure):

- nothing written after the switch point: RPO 0;
- the promoted server was the old primary's synchronous standby: what it lacks was in
  flight and never acknowledged (``synchronous_commit = on`` acknowledges a commit only
  once that standby has flushed it): RPO 0, the commits counted as unacknowledged;
- otherwise the lost commits were acknowledged (a commit is acknowledged once flushed
  locally): RPO = newest lost commit - the promoted server's last replayed commit, both
  timestamps from the database's own clock. When no replayed commit is known the first
  lost commit stands in: the figure is then at least that.

The reported RPO is the larger of the two witnesses, with its source. A database figure
covers writes older than the canary, so it lifts the canary's censoring when it is at
least as large.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ledgerdrill.measure.loss import Loss

# the timeline event a backend emits at a promotion with the facts ``database_loss`` reads
PROMOTION_EVIDENCE = "db.promotion-data-loss"
# its attribute saying when the promotion itself ended (monotonic ns, this machine's clock):
# the event comes after the old primary's WAL is read, which may be after a revert began
PROMOTED_MONO_NS = "promoted_mono_ns"


@dataclass(frozen=True)
class DatabaseLoss:
    promoted: str
    old_primary: str
    rpo_s: float | None  # None: the witness could not read (see detail)
    lost_commits: int | None
    acknowledged: bool  # the lost commits could have been acknowledged to clients
    detail: str


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def database_loss(promoted: str, facts: Mapping[str, Any]) -> DatabaseLoss:
    """The figure from one ``promotion-data-loss`` event's attributes."""
    old = str(facts.get("old_primary", "?"))
    if facts.get("error"):
        why = f"the database witness could not read {old}'s WAL: {facts['error']}"
        return DatabaseLoss(promoted, old, None, None, False, why)
    count = int(facts.get("lost_commits") or 0)
    newest = _moment(facts.get("newest_lost_commit"))
    if count == 0 or newest is None:
        text = f"nothing lost by SQL's account: {promoted} had every commit {old} wrote"
        return DatabaseLoss(promoted, old, 0.0, 0, False, text)
    if facts.get("promoted_was_sync_standby"):
        text = (
            f"{count} commits {old} wrote were not on {promoted}; it was the synchronous"
            " standby, so they were in flight and never acknowledged"
        )
        return DatabaseLoss(promoted, old, 0.0, count, False, text)
    replayed = _moment(facts.get("last_replayed_commit"))
    start = replayed or _moment(facts.get("first_lost_commit")) or newest
    rpo = max(0.0, (newest - start).total_seconds())
    since = (
        f"{promoted}'s last replayed commit"
        if replayed is not None
        else f"at least: {promoted} replayed no commit since it started; from the first lost"
    )
    text = f"{count} commits lost ({since} to {old}'s newest commit)"
    return DatabaseLoss(promoted, old, rpo, count, True, text)


def with_database_witness(loss: Loss, witnesses: Sequence[DatabaseLoss]) -> Loss:
    """``loss`` with the reported RPO the larger of the canary's and the database's."""
    known = [w for w in witnesses if w.rpo_s is not None]
    base = replace(loss, rpo_canary_s=loss.rpo_s, database=tuple(witnesses))
    if not known:
        return base
    database_rpo = max(w.rpo_s for w in known if w.rpo_s is not None)
    if database_rpo <= loss.rpo_s:
        # the canary's figure stands; a database figure as large completes a censored one
        return replace(base, rpo_censored=loss.rpo_censored and database_rpo < loss.rpo_s)
    return replace(base, rpo_s=database_rpo, rpo_source="database", rpo_censored=False)
