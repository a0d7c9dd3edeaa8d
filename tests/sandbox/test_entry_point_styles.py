"""The sandbox entry point's two styles, on the real Traefik binary: the hardened default
bounds a request to a replica that stopped answering (a frozen node) and the naive one
does not. The replica here passes its health checks and hangs on real work -- what a
frozen ERP worker looks like from Traefik -- so only the forwarding timeout can help."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from ledgerdrill.platforms.sandbox.certs import SandboxCA
from ledgerdrill.platforms.sandbox.traefik import HEALTH_PATH, TraefikComponent, routes_config

HANG_S = 8.0  # a hung request is let go after this, so the test always ends


class HealthyButHung(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith(HEALTH_PATH):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        time.sleep(HANG_S)

    def do_POST(self) -> None:
        time.sleep(HANG_S)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def replica() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HealthyButHung)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_naive_style_is_todays_configuration_and_hardened_adds_the_bounds() -> None:
    naive = routes_config(["http://r1"], [], style="naive")["http"]
    hardened = routes_config(["http://r1"], [], style="hardened")["http"]
    assert "serversTransports" not in naive
    assert "passiveHealthCheck" not in naive["services"]["erp-primary"]["loadBalancer"]
    assert naive["middlewares"]["retry"]["retry"] == {"attempts": 3, "initialInterval": "50ms"}
    timeouts = hardened["serversTransports"]["bounded"]["forwardingTimeouts"]
    assert timeouts["responseHeaderTimeout"] == "2s"
    assert hardened["services"]["erp-primary"]["loadBalancer"]["serversTransport"] == "bounded"
    assert hardened["middlewares"]["retry"]["retry"]["retryNonIdempotentMethod"] is False


@pytest.mark.parametrize("style", ["hardened", "naive"])
def test_a_request_to_a_hung_replica_is_bounded_only_when_hardened(
    style: str, replica: str
) -> None:
    state = Path(tempfile.mkdtemp(prefix="ldedge-", dir="/tmp"))
    edge = TraefikComponent(state, SandboxCA(state / "ca"), style=style)  # type: ignore[arg-type]
    edge.initial_backends = lambda: ([replica], [])
    edge.start()
    try:
        # the real Traefik took the configuration as written
        service = httpx.get(f"{edge.api_url}/api/http/services/erp-primary@file").json()
        balancer = service["loadBalancer"]
        assert ("serversTransport" in balancer) is (style == "hardened"), balancer
        status: int | None = None
        trust = ssl.create_default_context(cafile=str(edge.ca_path))
        with httpx.Client(verify=trust, trust_env=False) as client:
            try:
                answer = client.post(f"{edge.entry_url}/jsonrpc", json={}, timeout=5.0)
                status = answer.status_code
            except httpx.ReadTimeout:
                status = None  # still waiting when the client gave up
        if style == "hardened":
            assert status == 504  # Gateway Timeout: the user gets an answer, not a hang
        else:
            assert status is None  # nothing bounded the wait
    finally:
        edge.stop()
        shutil.rmtree(state, ignore_errors=True)
