"""A small client for Odoo's external API, shared by the transaction probe and the ledger
canary: JSON-RPC (``/web/session/authenticate`` and ``/web/dataset/call_kw``, a session
cookie) or Odoo 19's JSON-2 (``/json/2/<model>/<method>``, an API key, HTTP statuses),
as the target's ``erp_api`` says.

Only the documented wire format is used, so it works the same against the sandbox's
reference ERP and a real Odoo. Errors are classified for the canary: an Odoo error
object means the server answered and rolled back (the write *failed*); a transport
error after the request went out means nobody knows (*unknown*).
"""

from __future__ import annotations

import itertools
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from ledgerdrill.odoo_api import ErpApi, json2_body
from ledgerdrill.probes.lean_http import LeanClient

SESSION_EXPIRED = 100


class OdooError(Exception):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if name else message)
        self.code = code
        self.name = name
        self.message = message

    @property
    def session_expired(self) -> bool:
        return self.code == SESSION_EXPIRED or self.name.endswith("SessionExpiredException")

    @property
    def outcome_unknown(self) -> bool:
        """The server itself says the commit may or may not have happened (the sandbox's
        ERP answers a commit the synchronous standby never confirmed like this)."""
        return "not confirmed" in self.message or "might not have been replicated" in self.message


@dataclass(frozen=True)
class OdooTarget:
    url: str  # the public entry point, e.g. https://127.0.0.1:8443
    database: str
    login: str
    password: str  # secret: never logged, never in a repr
    ca_bundle: str | None = None
    api: ErpApi = "jsonrpc"
    api_key: str = ""  # JSON-2's bearer key (secret, like the password)

    def __repr__(self) -> str:
        return f"OdooTarget(url={self.url!r}, database={self.database!r}, login={self.login!r})"


class OdooSession:
    """One logged-in session (cookie ``session_id``); re-authenticates when it is lost.

    Not thread-safe on purpose: each probe or canary thread has its own session, as
    each real user has.
    """

    _ids = itertools.count(1)

    def __init__(self, target: OdooTarget, *, timeout_s: float = 5.0) -> None:
        self.target = target
        # http.client underneath, httpx's exception types (lean_http says why)
        self.client = LeanClient(
            target.url,
            context=ssl.create_default_context(cafile=target.ca_bundle),
            timeout_s=timeout_s,
            headers={"User-Agent": "ledgerdrill-probe"},
        )
        self.uid: int | None = None
        self.logins = 0
        self.login_failures = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def _rpc(self, path: str, params: dict[str, Any], timeout_s: float | None) -> Any:
        body = {"jsonrpc": "2.0", "method": "call", "params": params, "id": next(self._ids)}
        response = self.client.post(path, json=body, timeout=timeout_s)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if not error and (response.status_code >= 400 or not isinstance(payload, dict)):
            # a gateway's answer (Traefik's 502/503/504), not the ERP's
            raise httpx.HTTPStatusError(
                f"HTTP {response.status_code} from {path}",
                request=response.request,
                response=response.as_httpx(),
            )
        if error:
            data = error.get("data") or {}
            raise OdooError(
                int(error.get("code", 0)),
                str(data.get("name", "")),
                str(data.get("message") or error.get("message", "")),
            )
        return payload.get("result") if isinstance(payload, dict) else None

    def _json2(self, model: str, method: str, body: dict[str, Any], timeout_s: float | None) -> Any:
        """One JSON-2 call: 200 and the result, else Odoo's error object with a status."""
        headers = {"Authorization": f"bearer {self.target.api_key}",
                   "X-Odoo-Database": self.target.database}  # fmt: skip
        path = f"/json/2/{model}/{method}"
        response = self.client.post(path, json=body, headers=headers, timeout=timeout_s)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 200 and payload is not None:
            return payload
        if not isinstance(payload, dict) or "name" not in payload:
            # a gateway's answer (Traefik's 502/503/504), not the ERP's
            raise httpx.HTTPStatusError(
                f"HTTP {response.status_code} from {path}",
                request=response.request,
                response=response.as_httpx(),
            )
        raise OdooError(
            response.status_code, str(payload.get("name", "")), str(payload.get("message", ""))
        )

    def authenticate(self, timeout_s: float | None = None) -> int:
        self.logins += 1
        if self.target.api == "json2":  # no session: the key is checked on every call
            try:
                context = self._json2("res.users", "context_get", {}, timeout_s)
                self.uid = int(context["uid"])
            except Exception:
                self.login_failures += 1
                raise
            return self.uid
        try:
            result = self._rpc(
                "/web/session/authenticate",
                {
                    "db": self.target.database,
                    "login": self.target.login,
                    "password": self.target.password,
                },
                timeout_s,
            )
        except Exception:
            self.login_failures += 1
            raise
        uid = result.get("uid") if isinstance(result, dict) else None
        if not uid:
            self.login_failures += 1
            raise OdooError(0, "odoo.exceptions.AccessDenied", "login refused")
        self.uid = int(uid)
        return self.uid

    def call(
        self,
        model: str,
        method: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Any:
        """``call_kw`` as the session's user; one re-login if the session was lost. Over
        JSON-2, the same call with its arguments named (``odoo_api.json2_body``)."""
        if self.target.api == "json2":
            body = json2_body(method, args or [], kwargs)
            result = self._json2(model, method, body, timeout_s)
            # XML-RPC's and JSON-RPC's create of one dict answers its id, JSON-2 a list
            first = (args or [None])[0]
            single = method == "create" and isinstance(first, dict)
            return result[0] if single and isinstance(result, list) and result else result
        if self.uid is None:
            self.authenticate(timeout_s)
        params = {"model": model, "method": method, "args": args or [], "kwargs": kwargs or {}}
        try:
            return self._rpc(f"/web/dataset/call_kw/{model}/{method}", params, timeout_s)
        except OdooError as exc:
            if not exc.session_expired:
                raise
        self.uid = None
        self.authenticate(timeout_s)
        return self._rpc(f"/web/dataset/call_kw/{model}/{method}", params, timeout_s)


@dataclass(frozen=True)
class LedgerAccounts:
    """What a balanced test entry needs, looked up once by code (works on any chart)."""

    journal_id: int
    debit_account_id: int
    credit_account_id: int


def find_accounts(
    session: OdooSession,
    *,
    journal_code: str = "MISC",
    debit_code: str = "101401",
    credit_code: str = "400000",
) -> LedgerAccounts:
    journals = session.call(
        "account.journal", "search_read", [[("code", "=", journal_code)]], {"fields": ["id"]}
    )
    accounts = session.call(
        "account.account",
        "search_read",
        [[("code", "in", [debit_code, credit_code])]],
        {"fields": ["id", "code"]},
    )
    by_code = {str(a["code"]): int(a["id"]) for a in accounts}
    missing = [c for c in (debit_code, credit_code) if c not in by_code]
    if not journals or missing:
        raise OdooError(
            0, "ledgerdrill.setup", f"journal {journal_code} or accounts {missing} not found"
        )
    return LedgerAccounts(int(journals[0]["id"]), by_code[debit_code], by_code[credit_code])


def balanced_entry(accounts: LedgerAccounts, ref: str, amount: float = 1.0) -> dict[str, Any]:
    """An ``account.move`` create payload: one debit and one credit line of ``amount``."""
    return {
        "move_type": "entry",
        "journal_id": accounts.journal_id,
        "ref": ref,
        "line_ids": [
            (
                0,
                0,
                {
                    "account_id": accounts.debit_account_id,
                    "name": ref,
                    "debit": amount,
                    "credit": 0.0,
                },
            ),
            (
                0,
                0,
                {
                    "account_id": accounts.credit_account_id,
                    "name": ref,
                    "debit": 0.0,
                    "credit": amount,
                },
            ),
        ],
    }
