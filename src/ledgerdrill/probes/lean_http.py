"""A small keep-alive HTTP(S) client on the standard library's ``http.client``, for the
probes' Odoo sessions, raising httpx's exception types.

The probes call the ERP several times per sample, five samples a second for the whole
drill, and their CPU is part of what they disturb (issue 38: under 5% of a core at 5 Hz).
Per request, httpx's client costs ~1.9 ms of CPU on this machine where ``http.client``
costs ~0.65 ms; swapping only httpx's transport saves a fifth of the difference, so the
client itself is replaced (measured with a local TLS server; ``benchmarks/
probe_overhead.py`` measures the probes as a whole on the sandbox).

What it keeps from httpx, because the probes and the canary classify outcomes by it:

- the exception types, by phase: nothing sent (``ConnectError``, ``ConnectTimeout``)
  versus sent and then lost (``WriteError``/``WriteTimeout``, ``ReadTimeout``,
  ``RemoteProtocolError``, ``ReadError``): the canary counts a write "failed" only in
  the first case and "unknown" in the second; ``HTTPStatusError`` from
  ``raise_for_status``;
- a kept-alive connection the server has closed while idle (or that holds unread bytes)
  is never reused: it is checked before each request and replaced, so a request is
  never sent twice, and never fails for a connection that was dead before it started;
- cookies set by the server are sent back (Odoo's ``session_id``), one host, one path;
- a timeout bounds connecting, and each wait for the socket while sending or reading.

One connection, one request at a time (a lock): a probe's session belongs to one thread.
No proxy from the environment (httpx would read ``HTTPS_PROXY``): a probe measures the
platform's entry point, not the way out of the office.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx


class LeanResponse:
    """What the probes read of an answer."""

    def __init__(
        self, method: str, url: str, status: int, headers: list[tuple[str, str]], content: bytes
    ) -> None:
        self.method, self.url = method, url
        self.status_code = status
        self.headers = {name.lower(): value for name, value in headers}
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def request(self) -> httpx.Request:
        return httpx.Request(self.method, self.url)

    def as_httpx(self) -> httpx.Response:
        """For an error that carries the answer (built only on that path)."""
        return httpx.Response(
            self.status_code, headers=list(self.headers.items()), content=self.content,
            request=self.request,
        )  # fmt: skip

    def raise_for_status(self) -> LeanResponse:
        if self.status_code >= 400:
            raise httpx.HTTPStatusError(
                f"HTTP {self.status_code} for {self.method} {self.url}",
                request=self.request,
                response=self.as_httpx(),
            )
        return self


class LeanClient:
    def __init__(
        self,
        base_url: str,
        *,
        context: ssl.SSLContext | None = None,
        timeout_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        # a mistyped URL fails each request as httpx fails it (UnsupportedProtocol, an
        # HTTPError the probes report as a failed sample), never a traceback here
        self._unusable = (
            None
            if parts.scheme in ("http", "https") and parts.hostname
            else f"not an http(s) URL: {base_url!r}"
        )
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._host_header = parts.netloc
        self._context = context or ssl.create_default_context()
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def get(self, path: str, *, timeout: float | None = None) -> LeanResponse:
        return self.request("GET", path, timeout=timeout)

    def post(
        self,
        path: str,
        *,
        json: Any = None,  # httpx's name for the body, so callers read the same
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> LeanResponse:
        return self.request("POST", path, json=json, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> LeanResponse:
        timeout_s = self.timeout_s if timeout is None else timeout
        url = self.base_url + path
        if self._unusable is not None:
            raise httpx.UnsupportedProtocol(self._unusable)
        body = None if json is None else _json_bytes(json)
        sent = {"Host": self._host_header, "Accept": "*/*", **self.headers, **(headers or {})}
        if body is not None:  # putrequest/endheaders add no length of their own
            sent["Content-Type"] = "application/json"
            sent["Content-Length"] = str(len(body))
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        with self._lock:
            conn = self._usable() or self._connect(method, url, timeout_s)
            try:
                answer = self._exchange(
                    conn, method=method, url=url, path=path, headers=sent, body=body,
                    timeout_s=timeout_s,
                )  # fmt: skip
            except BaseException:
                self._drop()  # whatever happened, the connection's state is unknown
                raise
        self._keep_cookies(answer.headers_list)
        return LeanResponse(method, url, answer.status, answer.headers_list, answer.content)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the connection ---------------------------------------------------------------------
    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _usable(self) -> http.client.HTTPConnection | None:
        """The kept-alive connection, unless the server closed it while it was idle (a
        closed socket reads as ready: EOF) or sent something unasked for."""
        conn = self._conn
        if conn is None or conn.sock is None:
            return None
        try:
            readable, _, _ = select.select([conn.sock], [], [], 0)
        except (OSError, ValueError):
            readable = [conn.sock]
        if readable:
            self._drop()
            return None
        return conn

    def _connect(self, method: str, url: str, timeout_s: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout_s, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(
                str(exc) or "connect timed out", request=httpx.Request(method, url)
            ) from exc
        except OSError as exc:  # refused, unreachable, TLS refused (ssl.SSLError is one)
            conn.close()
            raise httpx.ConnectError(str(exc), request=httpx.Request(method, url)) from exc
        self._conn = conn
        return conn

    @staticmethod
    def _exchange(
        conn: http.client.HTTPConnection,
        *,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> _Answer:
        assert conn.sock is not None
        conn.sock.settimeout(timeout_s)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders(body)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(
                str(exc) or "write timed out", request=httpx.Request(method, url)
            ) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=httpx.Request(method, url)) from exc
        try:
            response = conn.getresponse()
            content = response.read()
        except TimeoutError as exc:
            raise httpx.ReadTimeout(
                str(exc) or "read timed out", request=httpx.Request(method, url)
            ) from exc
        except (http.client.RemoteDisconnected, http.client.IncompleteRead) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=httpx.Request(method, url)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise httpx.ReadError(str(exc), request=httpx.Request(method, url)) from exc
        # a "Connection: close" answer: http.client has closed the connection already,
        # and the next request connects afresh (_usable sees no socket)
        return _Answer(response.status, list(response.getheaders()), content)

    def _keep_cookies(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if name.lower() != "set-cookie":
                continue
            pair, _, attributes = value.partition(";")
            key, _, cookie = pair.strip().partition("=")
            expired = any(
                a.strip().lower().replace(" ", "") in ("max-age=0", "max-age=-1")
                for a in attributes.split(";")
            )
            if expired or not cookie:
                self.cookies.pop(key, None)
            else:
                self.cookies[key] = cookie


class _Answer:
    __slots__ = ("content", "headers_list", "status")

    def __init__(self, status: int, headers_list: list[tuple[str, str]], content: bytes) -> None:
        self.status, self.headers_list, self.content = status, headers_list, content


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
