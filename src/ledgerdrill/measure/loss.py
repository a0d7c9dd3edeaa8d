"""Data loss from the ledger canary's writes, read back after recovery (Jepsen's set checker).

Every write ends ``ok`` (acknowledged), ``fail`` (definitely not applied) or
``unknown`` (timeout, connection lost, commit not confirmed as replicated).
After recovery the ledger is read back, giving how many times each reference is
posted. Then:

- lost        = ok and absent
- recovered   = unknown and present (an in-doubt write that did land)
- unexpected  = present and never attempted
- duplicates  = posted more than once
- failed_but_present = fail and present: the system said no but applied it -- a
  client that retries such a write posts it twice, so it is reported on its own.

RPO = t_inject - (ack time of the earliest lost write), 0 when nothing is lost.
When the only lost writes were acknowledged *after* t_inject (e.g. writes after a
restore point that a point-in-time restore discards) that difference is negative:
RPO is then 0 but ``lost`` is not empty, and the verdict fails a zero-RPO tier on
``lost`` alone. ``loss_window_s`` is the span between the first and last lost ack.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ledgerdrill.timeline import Instant

if TYPE_CHECKING:
    from ledgerdrill.measure.db_loss import DatabaseLoss


class WriteOutcome(StrEnum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Write:
    ref: str
    outcome: WriteOutcome
    attempted_at: Instant
    acked_at: Instant | None = None  # when the outcome was known (for ok: the ack)
    detail: str = ""


@dataclass(frozen=True)
class Loss:
    attempted: int
    ok: int
    failed: int
    unknown: int
    lost: tuple[str, ...]
    recovered: tuple[str, ...]
    unexpected: tuple[str, ...]
    duplicates: tuple[str, ...]
    failed_but_present: tuple[str, ...]
    rpo_s: float
    loss_window_s: float
    earliest_lost_ack: Instant | None
    rpo_vs_restore_point_s: float | None = None
    # the canary's earliest acknowledged write is among the lost: the loss may reach back
    # before the canary began, so rpo_s is a lower bound, not the loss
    rpo_censored: bool = False
    # the witnesses: the canary's own figure, the database's (``db_loss``) when it read a
    # promotion, and which one rpo_s is
    rpo_canary_s: float | None = None
    # how far before the fault the canary's judged writes reach: a loss older than this
    # cannot be seen by the canary
    canary_history_s: float | None = None
    rpo_source: str = "canary"
    database: tuple[DatabaseLoss, ...] = ()  # one per promotion in the scenario
    # the canary's and the database's accounts contradict each other (``db_loss``): why
    witness_conflict: str = ""

    @property
    def anomalies(self) -> int:
        return (
            len(self.lost)
            + len(self.unexpected)
            + len(self.duplicates)
            + len(self.failed_but_present)
        )


def _final_outcomes(writes: Iterable[Write]) -> dict[str, Write]:
    """One outcome per reference. A client may retry a reference: ok wins over unknown
    wins over fail, because an acknowledged attempt means the ledger must hold it."""
    rank = {WriteOutcome.OK: 2, WriteOutcome.UNKNOWN: 1, WriteOutcome.FAIL: 0}
    final: dict[str, Write] = {}
    for write in writes:
        seen = final.get(write.ref)
        if seen is None or rank[write.outcome] > rank[seen.outcome]:
            final[write.ref] = write
    return final


def measure_loss(
    writes: Iterable[Write],
    read_back: Mapping[str, int],
    t_inject: Instant,
    *,
    restore_point: Instant | None = None,
    earlier: Iterable[Write] = (),
    known_lost: Collection[str] = frozenset(),
    known_duplicates: Collection[str] = frozenset(),
) -> Loss:
    """Classify every write against ``read_back`` (reference -> number of postings found).

    ``earlier``: writes an earlier read-back judged (a canary shared by a run's scenarios).
    They are not counted again, but an acknowledged one that is missing now -- and was not
    in ``known_lost`` -- is lost in this scenario too: a loss may reach back before this
    scenario's own writes. Duplicates in ``known_duplicates`` were reported before."""
    final = _final_outcomes(writes)
    before = {ref: w for ref, w in _final_outcomes(earlier).items() if ref not in final}
    everything = {**before, **final}
    present = {ref for ref, count in read_back.items() if count > 0}

    def refs(outcome: WriteOutcome) -> set[str]:
        return {ref for ref, w in final.items() if w.outcome is outcome}

    ok, failed, unknown = refs(WriteOutcome.OK), refs(WriteOutcome.FAIL), refs(WriteOutcome.UNKNOWN)
    newly_lost = {
        ref
        for ref, w in before.items()
        if w.outcome is WriteOutcome.OK and ref not in present and ref not in known_lost
    }
    lost = (ok - present) | newly_lost
    lost_acks = sorted(
        (everything[ref].acked_at or everything[ref].attempted_at for ref in lost),
        key=lambda i: i.mono_ns,
    )
    earliest = lost_acks[0] if lost_acks else None
    window_s = lost_acks[-1].seconds_since(lost_acks[0]) if lost_acks else 0.0
    # docs/architecture.md: t_inject - earliest lost ack. When writes acknowledged *after* the fault
    # are lost too (a point-in-time restore drops everything after its restore point),
    # that difference understates the loss: the span of lost acks is the honest floor.
    rpo_s = max(0.0, t_inject.seconds_since(earliest), window_s) if earliest else 0.0
    # censored: the earliest acknowledged write still to be accounted for is lost, so the
    # loss may reach back before the canary began
    acked = [
        w for ref, w in everything.items() if w.outcome is WriteOutcome.OK and ref not in known_lost
    ]
    first = min(acked, key=lambda w: (w.acked_at or w.attempted_at).mono_ns) if acked else None
    censored = first is not None and first.ref in lost
    history = (
        t_inject.seconds_since(
            min((w.attempted_at for w in everything.values()), key=lambda i: i.mono_ns)
        )
        if everything
        else None
    )
    vs_restore: float | None = None
    if restore_point is not None:
        vs_restore = max(0.0, t_inject.seconds_since(restore_point))
    duplicates = {ref for ref, count in read_back.items() if count > 1} - set(known_duplicates)
    return Loss(
        attempted=len(final),
        ok=len(ok),
        failed=len(failed),
        unknown=len(unknown),
        lost=tuple(sorted(lost)),
        recovered=tuple(sorted(unknown & present)),
        unexpected=tuple(sorted(present - set(everything))),
        duplicates=tuple(sorted(duplicates)),
        failed_but_present=tuple(sorted(failed & present)),
        rpo_s=rpo_s,
        loss_window_s=window_s,
        earliest_lost_ack=earliest,
        rpo_vs_restore_point_s=vs_restore,
        rpo_censored=censored,
        canary_history_s=history,
    )
