"""The ledger integrity probe: are the most recent posted entries whole?

Outages show up as failed requests; a bad change that deletes or alters posted entries
does not -- every request still succeeds. This probe reads the newest posted entries
through the ERP's API and fails when a journal's sequence has a gap (deleted entries
leave one as soon as the next entry is posted), when an entry does not balance, or
when a client reference was posted twice: the finance invariants, watched
continuously instead of once at the end.

Reading the newest ``window`` entries of every journal and all their lines at each
sample is the probe's whole cost at 5 Hz (issue 38's profile: ~800 entries and ~1,600
lines decoded and re-checked per sample). So a sample reads the whole window only when
it must, and otherwise what changed:

- a **full read** (the window of every journal, and its lines) at the first sample,
  every ``full_read_every_s``, and whenever the cheap check below does not add up;
- in between, an **incremental read**: the entries posted with an id above the highest
  one already read, their lines, and per journal the *totals of the whole posted
  ledger* (posted entries, posted lines, debit and credit sums: two ``read_group``
  calls, one row per journal). The totals must equal the last verified totals plus the
  new entries' share; then the new entries are merged into the windows and checked.

Anything that deletes a posted entry, posts one that is not new (a late-posted draft),
un-posts one, or changes a posted line's amount changes a total the new entries do not
explain, and the sample falls back to a full read: those are found at the next sample,
as before. An in-place edit that changes no line and no count (a renamed entry, an
edited reference) is found by the periodic full read, within ``full_read_every_s``.
A concurrent posting between the reads looks the same as a change and costs one full
read, never a wrong verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from ledgerdrill.measure.invariants import InvariantReport, PostedEntry, check_invariants
from ledgerdrill.probes.odoo_rpc import OdooError, OdooSession, OdooTarget
from ledgerdrill.timeline import Instant, Sample, Timeline

# amounts are currency (two decimals); sums travel as JSON floats
_AMOUNT_TOLERANCE = Decimal("0.005")
# more new entries than this since the last sample: a full read is as cheap
_MAX_NEW_ENTRIES = 1000


@dataclass(frozen=True)
class JournalTotals:
    """One journal's posted ledger, summed by the ERP."""

    entries: int = 0
    lines: int = 0
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)

    def plus(self, entries: int, lines: int, debit: Decimal, credit: Decimal) -> JournalTotals:
        return JournalTotals(
            self.entries + entries, self.lines + lines, self.debit + debit, self.credit + credit
        )

    def matches(self, other: JournalTotals) -> bool:
        return (
            self.entries == other.entries
            and self.lines == other.lines
            and abs(self.debit - other.debit) <= _AMOUNT_TOLERANCE
            and abs(self.credit - other.credit) <= _AMOUNT_TOLERANCE
        )


@dataclass(frozen=True)
class _Move:
    id: int
    journal: int
    entry: PostedEntry
    lines: int


@dataclass
class _Verified:
    """The windows as last read, and the ledger's totals they were read under."""

    windows: dict[int, list[_Move]]  # journal id -> newest entries, by name descending
    max_id: int
    totals: dict[int, JournalTotals]
    report: InvariantReport
    full_read_at: Instant


class LedgerIntegrityProbe:
    def __init__(
        self,
        name: str,
        target: OdooTarget,
        *,
        window: int = 200,
        counts_for_rto: bool = True,
        incremental: bool = True,
        full_read_every_s: float = 10.0,
    ) -> None:
        self.name = name
        self.target = target
        self.window = window
        self.counts_for_rto = counts_for_rto
        # False: every sample is a full read (the implementation before issue 38; kept
        # for benchmarks/probe_overhead.py's before/after and as the tests' oracle)
        self.incremental = incremental
        self.full_read_every_s = full_read_every_s
        self._session: OdooSession | None = None
        self._verified: _Verified | None = None
        self._journals: list[int] | None = None
        self.full_reads = 0  # how many samples needed the whole window (for benchmarks)

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        if self._session is None:
            self._session = OdooSession(self.target, timeout_s=timeout_s)
        try:
            report = self._check(self._session, timeout_s, start)
        except (OdooError, httpx.HTTPError) as exc:
            took = timeline.clock.now().seconds_since(start)
            return Sample(self.name, start, False, took, f"{type(exc).__name__}: {exc}")
        took = timeline.clock.now().seconds_since(start)
        metrics = {"entries": float(report.entries), "gaps": float(len(report.sequence_gaps))}
        if report.ok:
            return Sample(
                self.name, start, True, took, f"{report.entries} recent entries whole", metrics
            )
        return Sample(self.name, start, False, took, "; ".join(report.problems()), metrics)

    def _check(self, session: OdooSession, timeout_s: float, now: Instant) -> InvariantReport:
        verified = self._verified
        if (
            self.incremental
            and verified is not None
            and now.seconds_since(verified.full_read_at) < self.full_read_every_s
        ):
            updated = self._incremental_read(session, timeout_s, verified)
            if updated is not None:
                self._verified = updated
                return updated.report
        return self._full_read(session, timeout_s, now)

    def _full_read(self, session: OdooSession, timeout_s: float, now: Instant) -> InvariantReport:
        """The newest ``window`` posted entries *by number* of each journal: by number,
        not by id, because an entry created early and posted late gets a late number --
        a window by id would show that as a gap."""
        self.full_reads += 1
        before = self._totals(session, timeout_s) if self.incremental else None
        unknown = before is not None and not before.keys() <= set(self._journals or [])
        if self._journals is None or unknown:
            rows = session.call(
                "account.journal", "search_read", [[]], {"fields": ["id"]}, timeout_s=timeout_s
            )
            self._journals = [int(r["id"]) for r in rows]
        newest: list[dict[str, Any]] = []
        if before is not None:
            newest = session.call(
                "account.move", "search_read", [[("state", "=", "posted")]],
                {"fields": ["id"], "order": "id desc", "limit": 1}, timeout_s=timeout_s,
            )  # fmt: skip
        rows = []
        for journal in self._journals:
            rows += session.call(
                "account.move",
                "search_read",
                [[("journal_id", "=", journal), ("state", "=", "posted")]],
                {"fields": ["id", "name", "ref", "journal_id"], "order": "name desc",
                 "limit": self.window},
                timeout_s=timeout_s,
            )  # fmt: skip
        moves = self._with_lines(session, timeout_s, rows)
        windows: dict[int, list[_Move]] = {}
        for move in moves:
            windows.setdefault(move.journal, []).append(move)
        report = check_invariants(_entries(windows), full_sequence=False)
        if before is not None:
            after = self._totals(session, timeout_s)
            # the window and the totals describe one ledger only if nothing changed while
            # they were read; otherwise this verdict stands, and the next sample reads again
            if _same(before, after):
                max_id = max((int(r["id"]) for r in newest), default=0)
                self._verified = _Verified(windows, max_id, after, report, now)
            else:
                self._verified = None
        return report

    def _incremental_read(
        self, session: OdooSession, timeout_s: float, verified: _Verified
    ) -> _Verified | None:
        """The windows with the entries posted since, or None when the ledger changed in
        a way the new entries do not explain."""
        rows = session.call(
            "account.move", "search_read",
            [[("state", "=", "posted"), ("id", ">", verified.max_id)]],
            {"fields": ["id", "name", "ref", "journal_id"], "order": "id",
             "limit": _MAX_NEW_ENTRIES + 1},
            timeout_s=timeout_s,
        )  # fmt: skip
        if len(rows) > _MAX_NEW_ENTRIES:
            return None
        new = self._with_lines(session, timeout_s, rows)
        totals = self._totals(session, timeout_s)
        expected = dict(verified.totals)
        for move in new:
            expected[move.journal] = expected.get(move.journal, JournalTotals()).plus(
                1, move.lines, move.entry.debit, move.entry.credit
            )
        if not _same(expected, totals):
            return None
        if not new:
            return _Verified(
                verified.windows, verified.max_id, totals, verified.report, verified.full_read_at
            )
        windows = {journal: list(moves) for journal, moves in verified.windows.items()}
        for move in new:
            windows.setdefault(move.journal, []).append(move)
        for journal in {move.journal for move in new}:
            merged = sorted(windows[journal], key=lambda m: m.entry.name, reverse=True)
            windows[journal] = merged[: self.window]
        return _Verified(
            windows,
            max(move.id for move in new),
            totals,
            check_invariants(_entries(windows), full_sequence=False),
            verified.full_read_at,
        )

    @staticmethod
    def _with_lines(
        session: OdooSession, timeout_s: float, rows: list[dict[str, Any]]
    ) -> list[_Move]:
        if not rows:
            return []
        lines = session.call(
            "account.move.line",
            "search_read",
            [[("move_id", "in", [int(r["id"]) for r in rows])]],
            {"fields": ["move_id", "debit", "credit"]},
            timeout_s=timeout_s,
        )
        sums: dict[int, tuple[int, Decimal, Decimal]] = {}
        for line in lines:
            move = _id(line["move_id"])
            count, debit, credit = sums.get(move, (0, Decimal(0), Decimal(0)))
            sums[move] = (
                count + 1,
                debit + Decimal(str(line["debit"])),
                credit + Decimal(str(line["credit"])),
            )
        moves = []
        for row in rows:
            count, debit, credit = sums.get(int(row["id"]), (0, Decimal(0), Decimal(0)))
            entry = PostedEntry(str(row["name"]), row.get("ref") or None, debit, credit)
            moves.append(_Move(int(row["id"]), _id(row["journal_id"]), entry, count))
        return moves

    @staticmethod
    def _totals(session: OdooSession, timeout_s: float) -> dict[int, JournalTotals]:
        """Per journal: posted entries, posted lines and their sums (two ``read_group``)."""
        by_moves = session.call(
            "account.move", "read_group",
            [[("state", "=", "posted")], ["journal_id"], ["journal_id"]], timeout_s=timeout_s,
        )  # fmt: skip
        by_lines = session.call(
            "account.move.line", "read_group",
            [[("parent_state", "=", "posted")], ["debit:sum", "credit:sum"], ["journal_id"]],
            timeout_s=timeout_s,
        )  # fmt: skip
        totals: dict[int, JournalTotals] = {}
        for group in by_moves:
            journal = _id(group["journal_id"])
            totals[journal] = JournalTotals(entries=int(group["journal_id_count"]))
        for group in by_lines:
            journal = _id(group["journal_id"])
            totals[journal] = JournalTotals(
                totals.get(journal, JournalTotals()).entries,
                int(group["journal_id_count"]),
                Decimal(str(group["debit"])),
                Decimal(str(group["credit"])),
            )
        return totals


def _id(value: Any) -> int:
    """A many2one as the ERP answers it: ``[id, display name]``, or ``False``."""
    if isinstance(value, list | tuple):
        return int(value[0])
    return int(value) if value else 0


def _entries(windows: dict[int, list[_Move]]) -> Iterable[PostedEntry]:
    return (move.entry for moves in windows.values() for move in moves)


def _same(a: dict[int, JournalTotals], b: dict[int, JournalTotals]) -> bool:
    empty = JournalTotals()
    return all(a.get(j, empty).matches(b.get(j, empty)) for j in a.keys() | b.keys())
