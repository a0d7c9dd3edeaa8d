"""``LedgerCanary``: balanced entries written at a fixed rate through the ERP's API, each
with a unique client reference, then read back to measure what was lost.

Each write is classified the moment its answer comes back:

* ``ok``      -- ``action_post`` answered success: the ERP acknowledged a posted entry.
* ``fail``    -- the ERP answered with an error object (its transaction rolled back),
  or the request was never sent (no connection, or the entry point had no backend).
* ``unknown`` -- the request went out and no trustworthy answer came back: a timeout,
  a dropped connection, a gateway error, or the ERP saying the commit was not
  confirmed by the synchronous standby.

After recovery ``read_back`` finds the posted entries by reference and feeds
``measure_loss``; ``ledger_entries`` returns what the finance invariants need.
Every write is also a sample on the timeline (lane ``ledger-canary``), so the report
can draw acknowledged and lost writes against the outage.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from ledgerdrill.measure.invariants import InvariantReport, PostedEntry, check_invariants
from ledgerdrill.measure.loss import Loss, Write, WriteOutcome, measure_loss
from ledgerdrill.probes.odoo_rpc import (
    LedgerAccounts,
    OdooError,
    OdooSession,
    OdooTarget,
    balanced_entry,
    find_accounts,
)
from ledgerdrill.timeline import Instant, Sample, Timeline

LANE = "ledger-canary"
NOT_SENT_STATUS = {503}  # Traefik: no healthy backend, the request went nowhere
READ_BATCH = 500


class LedgerCanary:
    name = LANE
    counts_for_rto = False

    def __init__(
        self,
        target: OdooTarget,
        *,
        rate_hz: float = 5.0,
        timeout_s: float = 3.0,
        journal_code: str = "MISC",
        max_writes: int = 20_000,
        run_id: str | None = None,
    ) -> None:
        if not 0.1 <= rate_hz <= 50:
            raise ValueError(f"canary rate {rate_hz} Hz is outside 0.1..50 Hz")
        self.target = target
        self.interval_s = 1.0 / rate_hz
        self.timeout_s = timeout_s
        self.journal_code = journal_code
        self.max_writes = max_writes
        self.prefix = f"canary-{run_id or uuid.uuid4().hex[:8]}-"
        self.writes: list[Write] = []
        self.move_names: dict[str, str] = {}
        self._accounts: LedgerAccounts | None = None
        self._session: OdooSession | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timeline: Timeline | None = None
        self._lock = threading.Lock()
        # shared: one canary writes for the whole run, started by the first scenario and
        # stopped by the run. Each scenario's read-back judges its own writes (those since
        # the previous read-back) and checks every earlier acknowledged write again: a
        # loss that reaches back before the scenario's gate -- a replica that had lagged
        # for a while -- is seen as far back as the run began (issue 32: a canary that
        # began 2 s before the fault could never show more than 2 s). What an earlier
        # scenario reported lost or duplicated is not reported again.
        self.shared = False
        self._judged_upto = 0
        self.reported_lost: set[str] = set()
        self.reported_duplicates: set[str] = set()

    # -- writing ------------------------------------------------------------------------
    def start(self, timeline: Timeline) -> LedgerCanary:
        """Look up the journal and accounts (fails loudly: a canary that cannot write
        measures nothing), then write in a thread until ``stop``."""
        self._timeline = timeline
        self._session = OdooSession(self.target, timeout_s=self.timeout_s)
        session = self._session
        # right after another drill a replica may still be reconnecting: a few tries
        self._accounts = _patiently(
            lambda: find_accounts(session, journal_code=self.journal_code), attempts=4
        )
        self._thread = threading.Thread(target=self._run, name="ledger-canary", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def follow(self, timeline: Timeline) -> None:
        """Record the next writes on ``timeline`` (the next scenario's)."""
        with self._lock:
            self._timeline = timeline

    def next_window(self) -> tuple[list[Write], list[Write]]:
        """(writes judged by earlier read-backs, writes not judged yet), up to now; the
        next window starts after them. Writes still in flight belong to the next window:
        they may land after this read."""
        with self._lock:
            mark = len(self.writes)
            earlier = self.writes[: self._judged_upto]
            window = self.writes[self._judged_upto : mark]
            self._judged_upto = mark
        return earlier, window

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s * 3 + 1)

    def _run(self) -> None:
        assert self._timeline is not None
        origin = time.monotonic()
        tick = 0
        while not self._stop.is_set() and len(self.writes) < self.max_writes:
            self.write_one(f"{self.prefix}{tick:06d}")
            tick += 1
            wait = origin + tick * self.interval_s - time.monotonic()
            if wait < 0:  # a slow write delays only itself: skip to the next free slot
                tick = int((time.monotonic() - origin) / self.interval_s) + 1
                wait = origin + tick * self.interval_s - time.monotonic()
            if self._stop.wait(max(0.0, wait)):
                break

    def write_one(self, ref: str) -> Write:
        timeline = self._timeline
        if timeline is None or self._session is None or self._accounts is None:
            raise RuntimeError("LedgerCanary.write_one before start")
        clock = timeline.clock
        attempted = clock.now()
        outcome, detail = self._post(self._session, self._accounts, ref)
        done = clock.now()
        write = Write(ref, outcome, attempted, done, detail)
        with self._lock:
            self.writes.append(write)
        timeline.add_sample(
            Sample(
                LANE,
                attempted,
                outcome is WriteOutcome.OK,
                done.seconds_since(attempted),
                f"{outcome.value} {ref}" + (f": {detail}" if detail else ""),
            )
        )
        return write

    def _post(
        self, session: OdooSession, accounts: LedgerAccounts, ref: str
    ) -> tuple[WriteOutcome, str]:
        created = False
        try:
            move_id = session.call("account.move", "create", [balanced_entry(accounts, ref)])
            created = True
            ids = move_id if isinstance(move_id, list) else [move_id]
            session.call("account.move", "action_post", [ids])
        except OdooError as exc:
            if exc.outcome_unknown:
                return WriteOutcome.UNKNOWN, str(exc)
            return WriteOutcome.FAIL, f"{'post' if created else 'create'} refused: {exc}"
        except httpx.ConnectError as exc:
            session.uid = None
            return WriteOutcome.FAIL, f"not sent: {exc}"
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status in NOT_SENT_STATUS and not created:
                return WriteOutcome.FAIL, f"not sent: HTTP {status}"
            return WriteOutcome.UNKNOWN, f"HTTP {status}"
        except httpx.HTTPError as exc:  # sent, then timed out or dropped: nobody knows
            session.uid = None
            return WriteOutcome.UNKNOWN, f"{type(exc).__name__}: {exc}"
        return WriteOutcome.OK, ""

    # -- reading back -----------------------------------------------------------------------
    def _reader(self) -> OdooSession:
        return OdooSession(self.target, timeout_s=30.0)

    def read_back(self) -> dict[str, int]:
        """Posted entries per canary reference, from the ERP after recovery."""
        reader = self._reader()
        try:
            rows = self._search_posted(reader, [("ref", "like", self.prefix)])
        finally:
            reader.close()
        counts: dict[str, int] = {}
        for row in rows:
            ref = str(row.get("ref") or "")
            counts[ref] = counts.get(ref, 0) + 1
            self.move_names[ref] = str(row.get("name", ""))
        return counts

    def ledger_entries(self) -> list[PostedEntry]:
        """Every entry posted in the canary's journal since its first write (so sequence
        gaps between numbers are visible), with the debit and credit of each."""
        reader = self._reader()
        try:
            own = self._search_posted(reader, [("ref", "like", self.prefix)])
            if not own:
                return []
            first = min(str(r["name"]) for r in own)
            journal = own[0]["journal_id"]
            journal_id = journal[0] if isinstance(journal, list) else journal
            rows = self._search_posted(
                reader, [("journal_id", "=", journal_id), ("name", ">=", first)]
            )
            sums = self._line_sums(reader, [int(r["id"]) for r in rows])
        finally:
            reader.close()
        return [
            PostedEntry(
                str(r["name"]),
                r.get("ref") or None,
                *sums.get(int(r["id"]), (Decimal(0), Decimal(0))),
                journal=self.journal_code,
            )
            for r in rows
        ]

    @staticmethod
    def _search_posted(reader: OdooSession, domain: list[Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            batch = reader.call(
                "account.move",
                "search_read",
                [[("state", "=", "posted"), *domain]],
                {
                    "fields": ["id", "name", "ref", "journal_id"],
                    "order": "id",
                    "limit": READ_BATCH,
                    "offset": offset,
                },
            )
            found.extend(batch)
            if len(batch) < READ_BATCH:
                return found
            offset += READ_BATCH

    @staticmethod
    def _line_sums(reader: OdooSession, move_ids: list[int]) -> dict[int, tuple[Decimal, Decimal]]:
        sums: dict[int, tuple[Decimal, Decimal]] = {}
        for start in range(0, len(move_ids), READ_BATCH):
            lines = reader.call(
                "account.move.line",
                "search_read",
                [[("move_id", "in", move_ids[start : start + READ_BATCH])]],
                {"fields": ["move_id", "debit", "credit"]},
            )
            for line in lines:
                move = line["move_id"][0] if isinstance(line["move_id"], list) else line["move_id"]
                debit, credit = sums.get(int(move), (Decimal(0), Decimal(0)))
                sums[int(move)] = (
                    debit + Decimal(str(line["debit"])),
                    credit + Decimal(str(line["credit"])),
                )
        return sums


def measure_canary(
    canary: LedgerCanary, t_inject: Instant, *, restore_point: Instant | None = None
) -> tuple[Loss, InvariantReport]:
    """Read the canary's writes back and measure: loss (lost, recovered, unexpected,
    duplicates, RPO) and the finance invariants of what the ledger now holds."""
    earlier, window = canary.next_window()
    read_back = _patiently(canary.read_back)
    # written after this read began: the next scenario's, neither lost nor unexpected here
    seen = {w.ref for w in earlier} | {w.ref for w in window}
    later = {w.ref for w in list(canary.writes)} - seen
    read_back = {ref: n for ref, n in read_back.items() if ref not in later}
    loss = measure_loss(
        window, read_back, t_inject, restore_point=restore_point, earlier=earlier,
        known_lost=canary.reported_lost, known_duplicates=canary.reported_duplicates,
    )  # fmt: skip
    canary.reported_lost |= set(loss.lost)
    canary.reported_duplicates |= set(loss.duplicates)
    return loss, check_invariants(_patiently(canary.ledger_entries), full_sequence=False)


T = TypeVar("T")


def _patiently(read: Callable[[], T], attempts: int = 6, pause_s: float = 1.0) -> T:
    """Just after a recovery one replica may still be reconnecting to the database: a
    read-back that meets it tries again rather than declaring the loss unmeasurable."""
    for attempt in range(attempts):
        try:
            return read()
        except (OdooError, httpx.HTTPError):
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)
    raise AssertionError("unreachable")
