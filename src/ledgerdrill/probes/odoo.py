"""The Odoo transaction probe: what an accountant experiences, through the public entry.

Each sample authenticates if needed (the session is reused; a lost session means a
new login), creates a small balanced journal entry, posts it and reads it back --
only Odoo's external API, so it works against a real Odoo. The read-only variant
(portals) checks health and runs a ``search_read``. Per-step latencies are metrics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx

from ledgerdrill.probes.odoo_rpc import (
    LedgerAccounts,
    OdooError,
    OdooSession,
    OdooTarget,
    balanced_entry,
    find_accounts,
)
from ledgerdrill.timeline import Sample, Timeline


class OdooTransactionProbe:
    def __init__(
        self,
        name: str,
        target: OdooTarget,
        *,
        read_only: bool = False,
        journal_code: str = "MISC",
        counts_for_rto: bool = True,
    ) -> None:
        self.name = name
        self.target = target
        self.read_only = read_only
        self.journal_code = journal_code
        self.counts_for_rto = counts_for_rto
        self._session: OdooSession | None = None
        self._accounts: LedgerAccounts | None = None
        self.logins = 0
        self.login_failures = 0

    def _get_session(self, timeout_s: float) -> OdooSession:
        if self._session is None:
            self._session = OdooSession(self.target, timeout_s=timeout_s)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        deadline = time.monotonic() + timeout_s
        session = self._get_session(timeout_s)
        steps: dict[str, float] = {}

        def step(label: str, action: Callable[[float], object]) -> object:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no time left for {label}")
            began = time.perf_counter()
            try:
                return action(remaining)
            finally:
                steps[f"{label}_s"] = round(time.perf_counter() - began, 4)

        ok, detail = True, ""
        logins_before, failures_before = session.logins, session.login_failures
        try:
            if session.uid is None:
                step("login", session.authenticate)
            if self.read_only:
                self._read_only(session, step)
            else:
                detail = self._transaction(session, step)
        except OdooError as exc:
            ok, detail = False, f"odoo error: {exc}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
            session.uid = None if isinstance(exc, httpx.ConnectError) else session.uid
        except TimeoutError as exc:
            ok, detail = False, f"timeout: {exc}"
        self.logins += session.logins - logins_before
        self.login_failures += session.login_failures - failures_before
        took = timeline.clock.now().seconds_since(start)
        return Sample(self.name, start, ok, took, detail, steps)

    def _read_only(self, session: OdooSession, step: Callable[..., object]) -> None:
        def health(t: float) -> object:
            response = session.client.get("/web/health", timeout=t)
            response.raise_for_status()
            return response

        step("health", health)
        step(
            "search_read",
            lambda t: session.call(
                "res.partner", "search_read", [[]], {"fields": ["id"], "limit": 1}, timeout_s=t
            ),
        )

    def _transaction(self, session: OdooSession, step: Callable[..., object]) -> str:
        if self._accounts is None:
            self._accounts = find_accounts(session, journal_code=self.journal_code)
        accounts = self._accounts
        ref = f"probe-{uuid.uuid4().hex[:12]}"
        move_id = step(
            "create",
            lambda t: session.call(
                "account.move", "create", [balanced_entry(accounts, ref)], timeout_s=t
            ),
        )
        ids = move_id if isinstance(move_id, list) else [move_id]
        step("post", lambda t: session.call("account.move", "action_post", [ids], timeout_s=t))
        rows = step(
            "read",
            lambda t: session.call(
                "account.move", "read", [ids], {"fields": ["name", "state"]}, timeout_s=t
            ),
        )
        if not isinstance(rows, list) or not rows or rows[0].get("state") != "posted":
            raise OdooError(0, "ledgerdrill.probe", f"entry {ref} not posted after action_post")
        return str(rows[0].get("name", ""))
