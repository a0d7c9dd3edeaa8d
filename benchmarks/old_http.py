"""The probes' HTTP before issue 38's step 3, for the benchmarks that compare old and new
in one run (``probe_overhead.py``, ``accuracy.py --http-client httpx``): httpx's client
behind the interface of ``ledgerdrill.probes.lean_http.LeanClient``, swapped in by
rebinding the name the probe modules look up when they make a session."""

from __future__ import annotations

import ssl

import httpx

from ledgerdrill.probes import http_tls, odoo_rpc

LEAN = odoo_rpc.LeanClient


class HttpxClient:
    """The probes' HTTP before issue 38: httpx's client, behind LeanClient's interface."""

    def __init__(self, base_url: str, *, context: ssl.SSLContext | None = None,
                 timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> None:
        self._client = httpx.Client(base_url=base_url, verify=context or True,
                                    timeout=timeout_s, headers=headers)  # fmt: skip

    def _answer(self, response: httpx.Response) -> httpx.Response:
        response.as_httpx = lambda: response  # type: ignore[attr-defined]
        return response

    def post(self, path: str, *, json: object = None, headers: dict[str, str] | None = None,
             timeout: float | None = None) -> httpx.Response:
        extra = {} if timeout is None else {"timeout": timeout}
        return self._answer(self._client.post(path, json=json, headers=headers, **extra))  # type: ignore[arg-type]

    def get(self, path: str, *, timeout: float | None = None) -> httpx.Response:
        extra = {} if timeout is None else {"timeout": timeout}
        return self._answer(self._client.get(path, **extra))  # type: ignore[arg-type]

    def close(self) -> None:
        self._client.close()


def use_http_client(factory: object) -> None:
    """Which client the probes' sessions make from now on (module names, read per call)."""
    odoo_rpc.LeanClient = factory  # type: ignore[assignment,misc]
    http_tls.LeanClient = factory  # type: ignore[assignment,misc]
