"""The sandbox's entry point (Traefik) and cache (Redis), with the real programs.

Traefik fronts tiny stdlib HTTP servers standing in for ERP replicas, whose health
endpoint a test can turn off. Measured timings are printed (run with ``-s``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from ledgerdrill.platforms.sandbox.certs import SandboxCA, describe, write_pair
from ledgerdrill.platforms.sandbox.redis_component import RedisComponent
from ledgerdrill.platforms.sandbox.traefik import DEFAULT_CERT_SUBJECT, TraefikComponent
from ledgerdrill.processes import pid_alive

HEALTH_REMOVAL_LIMIT_S = 1.5
CERT_RELOAD_LIMIT_S = 1.0


def timing(name: str, seconds: float) -> None:
    print(f"\n[timing] {name}: {seconds:.3f}s")


def state_folder() -> Path:
    """Under /tmp and traversable by everyone (programs may run as another user)."""
    folder = Path(tempfile.mkdtemp(prefix="ldedge-", dir="/tmp"))
    folder.chmod(0o755)
    return folder


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> float:
    """Seconds until ``predicate()`` holds; fails the test after ``timeout_s``."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout_s:
            pytest.fail(f"condition not met within {timeout_s}s")
        time.sleep(interval_s)
    return time.monotonic() - began


@dataclass
class Backend:
    """A stand-in ERP replica: ``/web/health`` is 200 (or 503 when unhealthy), any
    other path answers with the backend's name."""

    name: str
    healthy: bool = True
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                failing = self.path == "/web/health" and not backend.healthy
                body = backend.name.encode()
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Edge:
    traefik: TraefikComponent
    backends: dict[str, Backend]

    def client(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.traefik.ca_path))

    def hits(self, count: int) -> list[str]:
        with self.client() as client:
            return [client.get(self.traefik.entry_url + "/").text for _ in range(count)]


@pytest.fixture
def edge() -> Iterator[Edge]:
    state = state_folder()
    backends = {name: Backend(name) for name in ("a", "b", "dr")}
    traefik = TraefikComponent(state, SandboxCA(state / "ca"))
    traefik.set_backends([backends["a"].url, backends["b"].url], [backends["dr"].url])
    try:
        traefik.start()
        assert traefik.started_in_s is not None
        timing("Traefik start (config written to certificate served)", traefik.started_in_s)
        yield Edge(traefik, backends)
    finally:
        pid = traefik.pid
        began = time.monotonic()
        traefik.stop()
        timing("Traefik stop", time.monotonic() - began)
        for backend in backends.values():
            backend.close()
        assert pid is None or not pid_alive(pid)
        shutil.rmtree(state, ignore_errors=True)


# -- routing -------------------------------------------------------------------------------
def test_https_verifies_on_ip_and_localhost_and_balances_round_robin(edge: Edge) -> None:
    port = edge.traefik.ports["websecure"]
    context = ssl.create_default_context(cafile=edge.traefik.ca_path)
    for host in ("127.0.0.1", "localhost"):
        with httpx.Client(verify=context) as client:
            answers = [client.get(f"https://{host}:{port}/").text for _ in range(6)]
        assert set(answers) == {"a", "b"}, (host, answers)
    status = edge.traefik.status()
    assert status["entry_url"] == f"https://127.0.0.1:{port}"
    assert status["pid"] == edge.traefik.pid
    assert (edge.traefik.state_dir / "nodes" / "edge" / "traefik.pid").exists()
    assert set(edge.traefik.backend_health().values()) == {"UP"}
    assert "Version:      3." in edge.traefik.version()


def test_unhealthy_backend_leaves_rotation_quickly(edge: Edge) -> None:
    a = edge.backends["a"]
    a.healthy = False
    seen_down = wait_for(lambda: edge.traefik.backend_health().get(a.url) == "DOWN", 5)
    timing("health check marks a 503 backend DOWN", seen_down)
    assert seen_down < HEALTH_REMOVAL_LIMIT_S
    assert set(edge.hits(6)) == {"b"}
    a.healthy = True
    wait_for(lambda: set(edge.hits(4)) == {"a", "b"}, 5)


def test_failover_to_dr_when_every_primary_fails_health(edge: Edge) -> None:
    for name in ("a", "b"):
        edge.backends[name].healthy = False
    to_dr = wait_for(lambda: edge.hits(1) == ["dr"], 5)
    timing("failover to DR after the whole primary fails health", to_dr)
    assert set(edge.hits(4)) == {"dr"}
    for name in ("a", "b"):
        edge.backends[name].healthy = True
    back = wait_for(lambda: set(edge.hits(4)) <= {"a", "b"}, 5)
    timing("fail back to primary", back)


def test_set_backends_takes_effect_and_empty_primary_goes_to_dr(edge: Edge) -> None:
    moved = Backend("moved")
    try:
        edge.traefik.set_backends([moved.url], [edge.backends["dr"].url])
        took = wait_for(lambda: set(edge.hits(3)) == {"moved"}, 5)
        timing("set_backends live", took)
        # no primary replica at all: a failover would answer 503, so DR serves directly
        edge.traefik.set_backends([], [edge.backends["dr"].url])
        wait_for(lambda: set(edge.hits(3)) == {"dr"}, 5)
    finally:
        moved.close()


# -- certificates ----------------------------------------------------------------------------
def watch_while(
    traefik: TraefikComponent, swap: Callable[[], float]
) -> tuple[list[float], list[str]]:
    """Swap the certificate five times (``swap`` returns seconds until the new one is
    served) while a client looks at what is served every 10 ms."""
    sightings: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                sightings.append(traefik.served_details().subject)
            except Exception as exc:  # an outage is what we look for
                sightings.append(f"error: {exc}")
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        times = [swap() for _ in range(5)]
    finally:
        stop.set()
        watcher.join()
    assert sightings
    return times, sightings


def test_certificate_replaced_in_place_by_hand_is_served_within_a_second(edge: Edge) -> None:
    """Files replaced in place (as by hand) are picked up. Cert and key are two renames,
    not one: a reload that falls between them finds a mismatched pair and serves
    Traefik's default certificate for an instant (seen 1 in 9 looks on a loaded CI run;
    ``TraefikComponent._write_certificate_files`` explains why the platform's own
    rotations never do this). What must never happen is a failed TLS connection."""
    traefik = edge.traefik

    def in_place() -> float:
        cert_pem, key_pem = traefik.ca.issue("valid")
        write_pair(traefik.cert_path, traefik.key_path, cert_pem, key_pem)
        return traefik.wait_until_serving(describe(cert_pem).fingerprint_sha256)

    times, sightings = watch_while(traefik, in_place)
    print(f"\n[timing] certificate reloads: {', '.join(f'{t:.3f}' for t in times)}s")
    timing("certificate reload, max of 5", max(times))
    assert max(times) < CERT_RELOAD_LIMIT_S
    failed = [s for s in sightings if s.startswith("error")]
    assert not failed, f"{len(failed)} of {len(sightings)} looks failed: {sorted(set(failed))[:3]}"


def test_a_rotation_by_the_platform_never_serves_the_default_certificate(edge: Edge) -> None:
    """The platform's rotation writes a new pair and switches ``tls.yaml`` in one atomic
    replace: a client during five rotations sees the old or the new certificate, never
    Traefik's default and never an error."""
    traefik = edge.traefik

    def rotate() -> float:
        began = time.monotonic()
        traefik.install_certificate("valid")  # returns once the new one is served
        return time.monotonic() - began

    times, sightings = watch_while(traefik, rotate)
    timing("certificate rotation, max of 5", max(times))
    assert max(times) < CERT_RELOAD_LIMIT_S
    bad = [s for s in sightings if DEFAULT_CERT_SUBJECT in s or s.startswith("error")]
    assert not bad, f"{len(bad)} of {len(sightings)} sightings: {sorted(set(bad))[:3]}"


def test_expired_certificate_is_served_and_fails_verification(edge: Edge) -> None:
    edge.traefik.install_certificate("expired")
    served = edge.traefik.served_certificate()
    assert served.variant == "expired"
    assert dt.datetime.fromisoformat(served.not_after_iso) < dt.datetime.now(dt.UTC)
    with pytest.raises(httpx.ConnectError, match="certificate has expired"):
        edge.hits(1)


def test_wrong_host_certificate_fails_hostname_check(edge: Edge) -> None:
    edge.traefik.install_certificate("wrong-host")
    assert edge.traefik.served_certificate().variant == "wrong-host"
    with pytest.raises(httpx.ConnectError, match=r"match|mismatch"):
        edge.hits(1)


def test_removed_certificate_falls_back_to_traefik_default(edge: Edge) -> None:
    edge.traefik.install_certificate("none")
    served = edge.traefik.served_certificate()
    assert DEFAULT_CERT_SUBJECT in served.subject
    assert served.variant == "none"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        edge.hits(1)


def test_backup_and_restore_round_trip(edge: Edge) -> None:
    traefik = edge.traefik
    original = traefik.served_certificate().fingerprint_sha256
    ref = traefik.backup_certificate()
    traefik.install_certificate("expired")
    assert traefik.served_certificate().fingerprint_sha256 != original
    traefik.restore_certificate(ref)
    assert traefik.served_certificate().fingerprint_sha256 == original
    assert edge.hits(1) in (["a"], ["b"])
    # a backup taken while no certificate is installed restores "none"
    traefik.install_certificate("none")
    empty = traefik.backup_certificate()
    traefik.restore_certificate(ref)
    traefik.restore_certificate(empty)
    assert traefik.served_certificate().variant == "none"


# -- Redis -------------------------------------------------------------------------------------
@pytest.fixture
def cache() -> Iterator[RedisComponent]:
    state = state_folder()
    component = RedisComponent(state)
    try:
        component.start()
        yield component
    finally:
        component.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_redis_needs_its_password_and_comes_back_empty_after_a_kill(cache: RedisComponent) -> None:
    assert cache.alive()
    with redis.Redis.from_url(cache.url) as client:
        client.set("session:1", "x")
    # without the password: on the wire, not through redis-py (which retries for seconds)
    with socket.create_connection(("127.0.0.1", cache.port), timeout=2) as raw:
        raw.sendall(b"PING\r\n")
        assert raw.recv(200).startswith(b"-NOAUTH")
    # the password is in a 0600 file, never on the command line
    pid = cache.service.pid
    assert pid is not None
    assert not any(cache._password in arg for arg in psutil.Process(pid).cmdline())
    assert (cache.folder / "secret").stat().st_mode & 0o077 == 0
    assert cache.status()["node"] == "cache-c"
    assert (cache.state_dir / "nodes" / "cache-c" / "redis.pid").exists()

    before = cache.instance_id()
    port = cache.port
    cache.kill()
    wait_for(lambda: not cache.alive(), 5)
    began = time.monotonic()
    cache.services()[0].start()  # what the supervisor does
    wait_for(cache.alive, 5)
    timing("Redis restart to PING", time.monotonic() - began)
    assert cache.port == port
    assert cache.instance_id() != before
    with redis.Redis.from_url(cache.url) as client:
        assert client.get("session:1") is None  # a cache: a restart loses everything
