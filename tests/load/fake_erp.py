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
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass
