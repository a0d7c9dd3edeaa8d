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

A backend that cannot read the old primary's WAL may still read the promoted server's
last replayed commit (``witness: replay-point``; CloudNativePG, by psql in the pod). Every
lost commit came after it, so ``fault - replay point`` bounds from above how far before
the fault the loss reaches: tight to the gap before the next commit (the canary commits
every 0.2 s), never below the truth. Its figure is that bound (``upper_bound``), plus the
read's own uncertainty. It takes the place of a censored canary figure; beside an
uncensored one the canary stands (a bound is not a loss: a synchronous failover loses
nothing though its last commit was a moment before the crash). A canary loss reaching
further back than the bound is a conflict between the witnesses, reported as one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ledgerdrill.measure.loss import Loss
from ledgerdrill.timeline import NS_PER_S, Instant

# the timeline event a backend emits at a promotion with the facts ``database_loss`` reads
PROMOTION_EVIDENCE = "db.promotion-data-loss"
# its attribute saying when the promotion itself ended (monotonic ns, this machine's clock):
# the event comes after the old primary's WAL is read, which may be after a revert began
PROMOTED_MONO_NS = "promoted_mono_ns"
REPLAY_POINT = "replay-point"
# how far a canary loss may reach past a replay point before the two accounts conflict,
# beyond the read's own error: clocks of two database nodes (NTP keeps them within ms)
CONFLICT_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class DatabaseLoss:
    promoted: str
    old_primary: str
    rpo_s: float | None  # None: the witness could not read (see detail)
    lost_commits: int | None
    acknowledged: bool  # the lost commits could have been acknowledged to clients
    detail: str
    # rpo_s bounds the loss from above (a replay point), it does not measure it
    upper_bound: bool = False
    # the replay point on this machine's monotonic clock, and how well it is known
    replayed_mono_ns: int | None = None
    replayed_error_s: float = 0.0


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def database_loss(
    promoted: str, facts: Mapping[str, Any], t_inject: Instant | None = None
) -> DatabaseLoss:
    """The figure from one ``promotion-data-loss`` event's attributes (``t_inject``: the
    fault's instant, which a replay point is measured back from)."""
    old = str(facts.get("old_primary", "?"))
    if facts.get("witness") == REPLAY_POINT:
        return _replay_point_bound(promoted, old, facts, t_inject)
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


def _replay_point_bound(
    promoted: str, old: str, facts: Mapping[str, Any], t_inject: Instant | None
) -> DatabaseLoss:
    if facts.get("error"):
        why = f"the database witness could not read {promoted}'s replay point: {facts['error']}"
        return DatabaseLoss(promoted, old, None, None, False, why, upper_bound=True)
    age, read_ns = facts.get("replay_age_s"), facts.get("read_mono_ns")
    if age is None or not isinstance(read_ns, int) or t_inject is None:
        why = f"{promoted} replayed no commit since it started: no bound on what {old} lost"
        return DatabaseLoss(promoted, old, None, None, False, why, upper_bound=True)
    # the replay point on this machine's clock: the database's own clock measured the age
    # at the moment of the read, which this machine dates to within read_error_s
    replayed_ns = read_ns - round(float(age) * NS_PER_S)
    error = float(facts.get("read_error_s") or 0.0)
    before_fault = (t_inject.mono_ns - replayed_ns) / NS_PER_S
    bound = max(0.0, before_fault) + error
    text = (
        f"at most {bound:.2f} s: {promoted} held every commit {old} wrote up to"
        f" {before_fault:.2f} s before the fault (its last replayed commit, read with"
        f" ±{error:.2f} s); what {old} wrote after was lost or never acknowledged"
    )
    return DatabaseLoss(promoted, old, bound, None, False, text, upper_bound=True,
                        replayed_mono_ns=replayed_ns, replayed_error_s=error)  # fmt: skip


def _conflict(loss: Loss, bound: DatabaseLoss) -> str:
    """The canary lost a write acknowledged before the promoted server's last replayed
    commit: a write it acknowledged later than a commit the server holds cannot be
    missing from it. One of the accounts is wrong (a read-back of another database, a
    replay point of another server): say so rather than pick one."""
    earliest, replayed = loss.earliest_lost_ack, bound.replayed_mono_ns
    if earliest is None or replayed is None:
        return ""
    earlier_s = (replayed - earliest.mono_ns) / NS_PER_S
    if earlier_s <= bound.replayed_error_s + CONFLICT_TOLERANCE_S:
        return ""
    return (
        f"the canary lost a write acknowledged {earlier_s:.2f} s before {bound.promoted}'s"
        f" last replayed commit, which it could not lack: one of the two accounts is wrong"
    )


def with_database_witness(loss: Loss, witnesses: Sequence[DatabaseLoss]) -> Loss:
    """``loss`` with the reported RPO the larger of the canary's and the database's."""
    base = replace(loss, rpo_canary_s=loss.rpo_s, database=tuple(witnesses))
    bounds = [w for w in witnesses if w.upper_bound and w.rpo_s is not None]
    conflict = "; ".join(filter(None, (_conflict(loss, w) for w in bounds)))
    base = replace(base, witness_conflict=conflict)
    if bounds and loss.rpo_censored and not conflict:
        # every lost commit came after each replay point: the largest bound covers them
        largest = max(w.rpo_s for w in bounds if w.rpo_s is not None)
        source = "database" if largest > loss.rpo_s else loss.rpo_source
        base = replace(base, rpo_s=max(largest, loss.rpo_s), rpo_source=source,
                       rpo_censored=False)  # fmt: skip
    known = [w for w in witnesses if w.rpo_s is not None and not w.upper_bound]
    if not known:
        return base
    loss = base
    database_rpo = max(w.rpo_s for w in known if w.rpo_s is not None)
    if database_rpo <= loss.rpo_s:
        # the canary's figure stands; a database figure as large completes a censored one
        return replace(base, rpo_censored=loss.rpo_censored and database_rpo < loss.rpo_s)
    return replace(base, rpo_s=database_rpo, rpo_source="database", rpo_censored=False)
