"""The ledger integrity probe: are the most recent posted entries whole?

Outages show up as failed requests; a bad change that deletes or alters posted entries
does not -- every request still succeeds. This probe reads the newest posted entries
through the ERP's API and fails when a journal's sequence has a gap (deleted entries
leave one as soon as the next entry is posted), when an entry does not balance, or
when a client reference was posted twice: the finance invariants, watched
continuously instead of once at the end.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from ledgerdrill.measure.invariants import PostedEntry, check_invariants
from ledgerdrill.probes.odoo_rpc import OdooError, OdooSession, OdooTarget
from ledgerdrill.timeline import Sample, Timeline


class LedgerIntegrityProbe:
    def __init__(
        self, name: str, target: OdooTarget, *, window: int = 200, counts_for_rto: bool = True
    ) -> None:
        self.name = name
        self.target = target
        self.window = window
        self.counts_for_rto = counts_for_rto
        self._session: OdooSession | None = None
        self._journals: dict[int, str] | None = None

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        if self._session is None:
            self._session = OdooSession(self.target, timeout_s=timeout_s)
        try:
            entries = self._recent(self._session, timeout_s)
        except (OdooError, httpx.HTTPError) as exc:
            took = timeline.clock.now().seconds_since(start)
            return Sample(self.name, start, False, took, f"{type(exc).__name__}: {exc}")
        took = timeline.clock.now().seconds_since(start)
        report = check_invariants(entries, full_sequence=False)
        metrics = {"entries": float(report.entries), "gaps": float(len(report.sequence_gaps))}
        if report.ok:
            return Sample(
                self.name, start, True, took, f"{report.entries} recent entries whole", metrics
            )
        return Sample(self.name, start, False, took, "; ".join(report.problems()), metrics)

    def _recent(self, session: OdooSession, timeout_s: float) -> list[PostedEntry]:
        """The newest ``window`` posted entries *by number* of each journal: by number,
        not by id, because an entry created early and posted late gets a late number --
        a window by id would show that as a gap."""
        if self._journals is None:
            rows = session.call(
                "account.journal", "search_read", [[]], {"fields": ["id", "code"]},
                timeout_s=timeout_s,
            )  # fmt: skip
            self._journals = {int(r["id"]): str(r["code"]) for r in rows}
        moves: list[dict[str, Any]] = []
        for journal_id in self._journals:
            moves += session.call(
                "account.move",
                "search_read",
                [[("journal_id", "=", journal_id), ("state", "=", "posted")]],
                {"fields": ["id", "name", "ref"], "order": "name desc", "limit": self.window},
                timeout_s=timeout_s,
            )
        if not moves:
            return []
        lines = session.call(
            "account.move.line",
            "search_read",
            [[("move_id", "in", [m["id"] for m in moves])]],
            {"fields": ["move_id", "debit", "credit"]},
            timeout_s=timeout_s,
        )
        sums: dict[int, tuple[Decimal, Decimal]] = {}
        for line in lines:
            move = line["move_id"][0] if isinstance(line["move_id"], list) else line["move_id"]
            debit, credit = sums.get(int(move), (Decimal(0), Decimal(0)))
            sums[int(move)] = (
                debit + Decimal(str(line["debit"])),
                credit + Decimal(str(line["credit"])),
            )
        entries = []
        for move in moves:
            debit, credit = sums.get(int(move["id"]), (Decimal(0), Decimal(0)))
            entries.append(PostedEntry(str(move["name"]), move.get("ref") or None, debit, credit))
        return entries
