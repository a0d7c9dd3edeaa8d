"""The controllable TCP link (``platforms/sandbox/netlink.py``), each behaviour proved by
what a client on the far side measures -- not by the link's own word: round trips through
an echo server for latency (order kept under jitter), transfer time for bandwidth,
``ECONNRESET`` for a reset, refusal and silence for a cut, and everything back after heal."""

from __future__ import annotations

import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator

import pytest

from ledgerdrill.platforms.sandbox.netlink import LinkShape, NetLink, shaped


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def link(echo: int) -> Iterator[NetLink]:
    running = NetLink("test", ("127.0.0.1", echo), seed=7).start()
    yield running
    running.stop()


def connect(link: NetLink) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", link.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    began = time.perf_counter()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += sock.recv(65536)
    assert got == payload
    return time.perf_counter() - began


def use(sock: socket.socket) -> None:
    """Send and wait for an answer; a connection closed without one counts as reset."""
    sock.sendall(b"after")
    if not sock.recv(10):
        raise ConnectionResetError("closed without an answer")


def connect_and_use(link: NetLink) -> None:
    with connect(link) as sock:
        sock.settimeout(5)
        use(sock)


def test_a_clean_link_passes_bytes_through(link: NetLink) -> None:
    with connect(link) as sock:
        payload = bytes(range(256)) * 400
        assert round_trip(sock, payload) < 1.0
    assert link.connections_total == 1


def test_latency_is_added_each_way(link: NetLink) -> None:
    with connect(link) as sock:
        clean = statistics.median(round_trip(sock) for _ in range(10))
        link.set_shape(LinkShape(latency_ms=40))
        slow = statistics.median(round_trip(sock) for _ in range(10))
    # 40 ms each way: a round trip 80 ms longer (scheduling adds a little, never less)
    assert 0.075 <= slow - clean <= 0.250, (clean, slow)


def test_jitter_varies_the_delay_but_never_reorders(link: NetLink) -> None:
    link.set_shape(LinkShape(latency_ms=5, jitter_ms=30))
    with connect(link) as sock:
        trips = [round_trip(sock) for _ in range(15)]
        # many small writes in a row: they arrive whole and in order
        sent = b"".join(f"{i:05d}".encode() for i in range(400))
        for i in range(400):
            sock.sendall(f"{i:05d}".encode())
        got = b""
        while len(got) < len(sent):
            got += sock.recv(65536)
    assert got == sent
    assert max(trips) - min(trips) > 0.010, trips  # the delay does vary
    assert min(trips) >= 0.010, trips  # and never drops under the 5 ms each way


def test_bandwidth_is_limited_each_way(link: NetLink) -> None:
    payload = b"x" * (512 * 1024)
    with connect(link) as sock:
        clean = round_trip(sock, payload)
        link.set_shape(LinkShape(bandwidth_kbps=1024))  # 1 MB/s
        took = round_trip(sock, payload)
    # half a megabyte at 1 MB/s, less the 100 ms burst: at least 0.4 s (the echo sends
    # back while it receives, so the two ways overlap); unshaped, a few milliseconds
    assert clean < 0.2, clean
    assert 0.38 <= took <= 1.5, took


def test_reset_breaks_every_open_connection(link: NetLink) -> None:
    with connect(link) as a, connect(link) as b:
        round_trip(a)
        round_trip(b)
        assert link.reset_connections() == 2
        for sock in (a, b):
            with pytest.raises((ConnectionResetError, BrokenPipeError)):
                use(sock)
    assert link.resets_total == 2
    with connect(link) as c:  # the link itself still carries new connections
        round_trip(c)


def test_a_cut_refuses_new_connections_holds_open_ones_and_heals(link: NetLink) -> None:
    with connect(link) as sock:
        round_trip(sock)
        link.set_shape(shaped(link, cut=True))
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", link.port), timeout=2)
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(10)  # nothing crosses while cut
        link.heal()
        sock.settimeout(5)
        assert sock.recv(10) == b"held"  # delivered when the link heals, as TCP would
    with connect(link) as again:
        round_trip(again)


def test_a_far_side_that_is_gone_is_a_reset_for_the_client() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    link = NetLink("dead", ("127.0.0.1", dead_port)).start()
    try:
        # the reset may arrive before connect() returns (seen in CI) or at first use
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            connect_and_use(link)
    finally:
        link.stop()
    assert link.connections_total == 0  # nothing was carried


def test_shapes_refuse_what_is_not_a_duration_or_a_rate() -> None:
    with pytest.raises(ValueError, match="latency"):
        LinkShape(latency_ms=-1)
    with pytest.raises(ValueError, match="bandwidth"):
        LinkShape(bandwidth_kbps=0)


def test_a_link_repointed_carries_new_connections_to_the_new_upstream(link: NetLink) -> None:
    """A failover: the link follows the promoted primary; what was open to the old one
    is reset, as a connection to a server that went away would be."""

    class _Shout(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while data := self.request.recv(65536):
                self.request.sendall(data.upper())

    other = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Shout)
    other.daemon_threads = True
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with connect(link) as old:
            round_trip(old, b"abc")
            link.set_upstream(("127.0.0.1", int(other.server_address[1])))
            with pytest.raises((ConnectionResetError, BrokenPipeError)):
                use(old)
        with connect(link) as new:
            new.sendall(b"abc")
            assert new.recv(10) == b"ABC"
    finally:
        other.shutdown()
        other.server_close()


def test_latency_runs_from_each_chunks_arrival_not_from_the_one_before(link: NetLink) -> None:
    """Ten messages sent 20 ms apart through 100 ms each way come back 20 ms apart, each
    ~200 ms after it left: a link carries many messages at once (a WAL stream), it does
    not hold each one until the previous is through."""
    link.set_shape(LinkShape(latency_ms=100))
    with connect(link) as sock:
        sent, got = [], []
        reader_done = threading.Event()

        def read() -> None:
            buffer = b""
            while len(got) < 10:
                buffer += sock.recv(1024)
                while len(buffer) >= 4 and len(got) < 10:
                    buffer = buffer[4:]
                    got.append(time.perf_counter())
            reader_done.set()

        threading.Thread(target=read, daemon=True).start()
        for _ in range(10):
            sent.append(time.perf_counter())
            sock.sendall(b"msg!")
            time.sleep(0.02)
        assert reader_done.wait(5)
    trips = [g - s for s, g in zip(sent, got, strict=True)]
    assert all(0.19 <= t < 0.30 for t in trips), trips  # each one round trip, not more
    assert got[-1] - got[0] < 0.35  # spread as sent (0.18 s), not queued (>= 1.8 s)


def test_loss_delays_a_lost_chunk_and_those_behind_it_by_a_retransmission(
    link: NetLink,
) -> None:
    link.set_shape(LinkShape(loss_percent=30))
    with connect(link) as sock:
        trips = [round_trip(sock) for _ in range(40)]
    slow = [t for t in trips if t >= 0.19]
    print(f"\n[netlink] 30% loss: {len(slow)} of 40 round trips took a retransmission")
    # two chunks per round trip, each lost with p=0.3: about half the trips are late;
    # a trip is never late by less than one timeout, and a clean one stays fast
    assert 8 <= len(slow) <= 32, trips
    assert all(t < 0.05 for t in trips if t < 0.19), trips
    link.heal()
    with connect(link) as sock:
        assert max(round_trip(sock) for _ in range(20)) < 0.05
