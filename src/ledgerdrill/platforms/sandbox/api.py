"""The sandbox daemon's control API: the sandbox's equivalent of a cloud's management API.

The database cluster, its HA controller and the supervisor live in the daemon; a
drill (another process) asks it to switch over, rejoin a member, restore to a point
in time, roll a release out, fail a region over. JSON over HTTP on 127.0.0.1, one
POST per operation, authorised by a bearer token from a 0600 file in the state
folder. Node faults do not go through here: they act on processes directly, as a
hypervisor would.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from ledgerdrill.errors import PlatformError

Operation = Callable[[dict[str, Any]], Any]
TOKEN_FILE = "api-token"
MAX_BODY = 1 << 20


class ControlApi:
    """Serves ``operations`` (name -> callable(params) -> JSON-able result)."""

    def __init__(self, state_dir: Path, operations: dict[str, Operation]) -> None:
        self.operations = operations
        self.token = secrets.token_urlsafe(24)
        token_path = state_dir / TOKEN_FILE
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-api", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # the event log records what matters

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if not hmac.compare_digest(given, api.token):
                    self._reply(401, {"error": "unauthorised"})
                    return
                name = self.path.strip("/")
                operation = api.operations.get(name)
                if operation is None:
                    self._reply(
                        404, {"error": f"no operation {name!r}", "known": sorted(api.operations)}
                    )
                    return
                length = min(int(self.headers.get("Content-Length", "0") or 0), MAX_BODY)
                try:
                    params = json.loads(self.rfile.read(length) or b"{}")
                    result = operation(params if isinstance(params, dict) else {})
                except Exception as exc:  # the caller gets the reason; the daemon goes on
                    self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
                    return
                self._reply(200, {"result": result})

        return Handler


class ControlClient:
    def __init__(self, url: str, token_path: Path, timeout_s: float = 180.0) -> None:
        self.url = url
        self.token_path = token_path
        self.timeout_s = timeout_s

    def call(self, operation: str, **params: Any) -> Any:
        try:
            token = self.token_path.read_text().strip()
        except FileNotFoundError:
            raise PlatformError("the sandbox is not running (no API token)") from None
        try:
            response = httpx.post(
                f"{self.url}/{operation}",
                json=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"sandbox API {operation}: {exc}") from exc
        body = response.json() if response.content else {}
        if response.status_code != 200:
            raise PlatformError(
                f"sandbox API {operation} failed: {body.get('error', response.status_code)}"
            )
        return body.get("result")
