"""Just enough of Odoo's JSON-RPC for the controller and login flows of the locustfile:
a witness of what the load really sent (every login's time)."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

JOURNALS = [{"id": i, "code": c} for i, c in enumerate(("INV", "BILL", "BNK", "MISC"), 1)]
ACCOUNTS = [
    {"id": i, "code": c} for i, c in enumerate(("121000", "211000", "400000", "600000", "101401"))
]


class FakeErp(BaseHTTPRequestHandler):
    """Just enough of Odoo's JSON-RPC for the controller and login flows."""

    logins: list[float]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/control/fail-for":  # the test's switch: users' trouble, for s
            self.server.failing_until = time.time() + float(body["seconds"])  # type: ignore[attr-defined]
            self._answer(200, b"{}")
            return
        if self.path == "/control/hang-window":  # requests arriving in it hang, then 504
            now = time.time()
            self.server.hang = (now + body["from"], now + body["to"], body["seconds"])  # type: ignore[attr-defined]
            self._answer(200, b"{}")
            return
        if time.time() < getattr(self.server, "failing_until", 0.0):
            self._answer(503, b"unavailable")
            return
        start, stop, seconds = getattr(self.server, "hang", (0.0, 0.0, 0.0))
        if start <= time.time() <= stop:
            self.server.hung.append(time.time())  # type: ignore[attr-defined]
            time.sleep(seconds)  # a frozen replica holds it until the entry point's timeout
            self._answer(504, b"gateway timeout")
            return
        if self.path == "/web/session/authenticate":
            self.server.logins.append(time.time())  # type: ignore[attr-defined]
            result: Any = {"uid": 2}
        elif self.path.endswith("account.journal/search_read"):
            result = JOURNALS
        elif self.path.endswith("account.account/search_read"):
            result = ACCOUNTS
        else:
            result = []
        data = json.dumps({"jsonrpc": "2.0", "id": body.get("id"), "result": result}).encode()
        self._answer(200, data)

    def _answer(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass
