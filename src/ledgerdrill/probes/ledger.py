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
  every ``full_read_every_s``, and whenever the check below does not add up;
- in between, an **incremental read**: the entries posted since, found by number (a
  journal's numbers are given in posting order, so "posted since" is exactly "numbered
  after the newest one read" -- an entry created early and posted late included), their
  lines, and per journal the totals of the lines of every posted entry numbered up to
  the newest one read now (how many, debit and credit sums: one ``read_group`` call, a
  row per journal, on Odoo's stored ``account.move.line.move_name``). Those totals must
  equal the last ones plus the new entries' share; then the new entries join the windows.

An entry posted while the probe reads gets a later number, outside the totals: it
cannot make them disagree. What does: a posted entry deleted, un-posted or given other
amounts, or posted with a number before the newest (another year's sequence). Then the
sample is a full read, and the change is found as before, at the next sample. An edit
that changes no line and no count (a renamed entry, an edited reference) is found by
the periodic full read, within ``full_read_every_s``; so is a deletion in the instant
between a full read's window and its totals.
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
    """One journal's posted lines, summed by the ERP."""

    lines: int = 0
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)

    def plus(self, lines: int, debit: Decimal, credit: Decimal) -> JournalTotals:
        return JournalTotals(self.lines + lines, self.debit + debit, self.credit + credit)

    def matches(self, other: JournalTotals) -> bool:
        return (
            self.lines == other.lines
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
    """The windows as last read, and the ledger's totals up to their newest entries."""

    windows: dict[int, list[_Move]]  # journal id -> newest entries, by number descending
    totals: dict[int, JournalTotals]  # journal id -> posted entries numbered up to the newest
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
        self._journals: list[int] | None = None
        self._verified: _Verified | None = None
        # for benchmarks: samples taken, and how many of them read the whole window
        self.samples = 0
        self.full_reads = 0

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        self.samples += 1
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
        if self._journals is None:
            found = session.call(
                "account.journal", "search_read", [[]], {"fields": ["id"]}, timeout_s=timeout_s
            )
            self._journals = [int(r["id"]) for r in found]
        rows: list[dict[str, Any]] = []
        for journal in self._journals:
            rows += session.call(
                "account.move",
                "search_read",
                [[("journal_id", "=", journal), ("state", "=", "posted")]],
                {"fields": ["id", "name", "ref", "journal_id"], "order": "name desc",
                 "limit": self.window},
                timeout_s=timeout_s,
            )  # fmt: skip
        windows: dict[int, list[_Move]] = {journal: [] for journal in self._journals}
        for move in self._with_lines(session, timeout_s, rows):
            windows.setdefault(move.journal, []).append(move)
        report = check_invariants(_entries(windows), full_sequence=False)
        if self.incremental:
            # entries posted from now on are numbered after the window's newest: outside
            # these totals, whenever they are read
            self._verified = _Verified(
                windows, self._totals(session, timeout_s, _newest(windows)), report, now
            )
        return report

    def _incremental_read(
        self, session: OdooSession, timeout_s: float, verified: _Verified
    ) -> _Verified | None:
        """The windows with the entries posted since, or None when the ledger changed in
        a way the new entries do not explain."""
        newest = _newest(verified.windows)
        known = list(verified.windows)
        after = [
            [("journal_id", "=", j), ("state", "=", "posted"), ("name", ">", newest[j])]
            if j in newest
            else [("journal_id", "=", j), ("state", "=", "posted")]
            for j in known
        ]
        # and any journal made since: its entries make this sample a full read
        after.append([("journal_id", "not in", known), ("state", "=", "posted")])
        rows = session.call(
            "account.move", "search_read", [_any_of(after)],
            {"fields": ["id", "name", "ref", "journal_id"], "order": "name",
             "limit": _MAX_NEW_ENTRIES + 1},
            timeout_s=timeout_s,
        )  # fmt: skip
        if len(rows) > _MAX_NEW_ENTRIES:
            return None
        new = self._with_lines(session, timeout_s, rows)
        if any(move.journal not in verified.windows for move in new):
            self._journals = None
            return None
        windows = {journal: list(moves) for journal, moves in verified.windows.items()}
        expected = dict(verified.totals)
        for move in new:
            windows[move.journal].append(move)
            expected[move.journal] = expected.get(move.journal, JournalTotals()).plus(
                move.lines, move.entry.debit, move.entry.credit
            )
        for journal in {move.journal for move in new}:
            merged = sorted(windows[journal], key=lambda m: m.entry.name, reverse=True)
            windows[journal] = merged[: self.window]
        if not _same(expected, self._totals(session, timeout_s, _newest(windows))):
            return None
        report = check_invariants(_entries(windows), full_sequence=False) if new else None
        return _Verified(windows, expected, report or verified.report, verified.full_read_at)

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
    def _totals(
        session: OdooSession, timeout_s: float, newest: dict[int, str]
    ) -> dict[int, JournalTotals]:
        """Per journal, the lines of posted entries numbered up to ``newest``: how many,
        and their sums (one ``read_group``). Lines, not entries, are counted: a posted
        entry has at least one (the ERP refuses to post one without), deleting an entry
        deletes its lines, and un-posting one takes its lines out of ``parent_state``."""
        if not newest:
            return {}
        groups = session.call(
            "account.move.line", "read_group",
            [_any_of([[("journal_id", "=", j), ("parent_state", "=", "posted"),
                       ("move_name", "<=", name)] for j, name in newest.items()]),
             ["debit:sum", "credit:sum"], ["journal_id"]],
            timeout_s=timeout_s,
        )  # fmt: skip
        return {
            _id(group["journal_id"]): JournalTotals(
                int(group["journal_id_count"]),
                Decimal(str(group["debit"])),
                Decimal(str(group["credit"])),
            )
            for group in groups
        }


def _id(value: Any) -> int:
    """A many2one as the ERP answers it: ``[id, display name]``, or ``False``."""
    if isinstance(value, list | tuple):
        return int(value[0])
    return int(value) if value else 0


def _newest(windows: dict[int, list[_Move]]) -> dict[int, str]:
    return {journal: moves[0].entry.name for journal, moves in windows.items() if moves}


def _any_of(domains: list[list[Any]]) -> list[Any]:
    """Odoo's prefix notation: ``['|', A, B]`` for A or B, terms of one side and-ed."""
    out: list[Any] = ["|"] * (len(domains) - 1)
    for domain in domains:
        out += ["&"] * (len(domain) - 1) + domain
    return out


def _entries(windows: dict[int, list[_Move]]) -> Iterable[PostedEntry]:
    return (move.entry for moves in windows.values() for move in moves)


def _same(a: dict[int, JournalTotals], b: dict[int, JournalTotals]) -> bool:
    empty = JournalTotals()
    return all(a.get(j, empty).matches(b.get(j, empty)) for j in a.keys() | b.keys())
