"""A network link the harness controls: a TCP proxy between two components of the
sandbox (the ERP and its database, two database servers, the two regions), which can add
latency and jitter, throttle bandwidth, reset every connection, and cut the link.

This machine has network namespaces but no ``netem`` queueing discipline, and no
Toxiproxy package; a proxy of our own on asyncio is enough for TCP between local
programs. What it models, and what it cannot:

- **latency** (``latency_ms`` each way, plus up to ``jitter_ms`` at random): every chunk read
  from one side is written to the other that much later. Order is kept: a chunk never
  overtakes the one before it (TCP delivers in order), so jitter delays, never reorders;
- **bandwidth** (``bandwidth_kbps`` each way): a token bucket per direction;
- **reset**: every open connection is closed with an RST (``SO_LINGER`` 0), as a
  middlebox dropping its state does -- the programs see ``ECONNRESET``;
- **cut** (a partition): new connections are refused (the listener is closed: on a real
  network a SYN would go unanswered until the client's timeout; here the refusal is
  immediate), and open connections stop carrying bytes in both directions; what was sent
  meanwhile is held and delivered when the link heals, as TCP would retransmit it --
  unless the programs gave up first, which is what a partition tests.
- **loss** (``loss_percent``): TCP hides a lost segment from the programs and resends it
  after its retransmission timeout; what they see is that chunk, and everything behind it,
  late by that timeout (200 ms, Linux's minimum). A chunk "lost" here waits that much more;
- not modelled: packets as such, MTU, anything below TCP, and RTO backoff when a resent
  segment is lost again.

``NetLink`` runs its own event loop in a daemon thread; every control call is thread-safe
and returns when the change is in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ledgerdrill.errors import PlatformError

CHUNK = 64 * 1024
HELD_CHUNKS = 64  # read ahead of what the shape lets through, per direction
# Linux's minimum TCP retransmission timeout (TCP_RTO_MIN, include/net/tcp.h: HZ / 5):
# what a lost segment costs on a low-latency link before it is sent again
RETRANSMIT_MS = 200.0
T = TypeVar("T")


@dataclass(frozen=True)
class LinkShape:
    """How the link behaves now. The default is a clean link."""

    latency_ms: float = 0.0  # one way
    jitter_ms: float = 0.0  # added at random, 0..jitter, one way
    bandwidth_kbps: float | None = None  # kilobytes per second, each way; None: unlimited
    cut: bool = False
    # share of chunks "lost": each waits a retransmission timeout more (``RETRANSMIT_MS``)
    loss_percent: float = 0.0

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency and jitter are durations: 0 or more milliseconds")
        if self.bandwidth_kbps is not None and self.bandwidth_kbps <= 0:
            raise ValueError("bandwidth is more than 0 kB/s (None: unlimited)")
        if not 0 <= self.loss_percent <= 100:
            raise ValueError("loss is a percentage: 0 to 100")


@dataclass
class _Direction:
    """One way of one connection: when its last chunk was released (order is kept), and
    its token bucket."""

    released_at: float = 0.0
    tokens: float = 0.0
    refilled_at: float = 0.0


class NetLink:
    """A TCP proxy from ``127.0.0.1:listen_port`` (0: any free port) to ``upstream``."""

    def __init__(
        self, name: str, upstream: tuple[str, int], *, listen_port: int = 0, seed: int | None = None
    ) -> None:
        self.name = name
        self.upstream = upstream
        self._requested_port = listen_port
        self.port = 0
        self.shape = LinkShape()
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"netlink-{name}",
                                        daemon=True)  # fmt: skip
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._healed = asyncio.Event()
        self.connections_total = 0
        self.resets_total = 0

    # -- control (any thread) -----------------------------------------------------------
    def start(self) -> NetLink:
        self._thread.start()
        self._call(self._heal())
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close the listener and every connection; the port is free when this returns."""
        if not self._thread.is_alive():
            return
        self._call(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def set_shape(self, shape: LinkShape) -> None:
        """Latency, jitter, bandwidth and cut, in effect when this returns (for bytes
        read from then on; chunks already waiting keep the delay they were given)."""
        self._call(self._apply(shape))

    def reset_connections(self) -> int:
        """Close every open connection with an RST; how many there were."""
        return self._call(self._close_all(reset=True))

    def set_upstream(self, upstream: tuple[str, int], *, reset: bool = True) -> None:
        """Send new connections to ``upstream`` from now on (a promoted primary); with
        ``reset`` the open ones are reset, as a connection to the old one would be lost."""
        self._call(self._repoint(upstream, reset=reset))

    def heal(self) -> None:
        """A clean link again: no latency, no limit, not cut."""
        self.set_shape(LinkShape())

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    # -- the loop ------------------------------------------------------------------------
    async def _heal(self) -> None:
        self._healed.set()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        port = self.port or self._requested_port
        try:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        except OSError as exc:
            raise PlatformError(
                f"link {self.name}: cannot listen on 127.0.0.1:{port}: {exc}"
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _apply(self, shape: LinkShape) -> None:
        was_cut = self.shape.cut
        self.shape = shape
        if shape.cut and not was_cut:
            self._healed.clear()
            if self._server is not None:  # new connections are refused while cut
                self._server.close()
                await self._server.wait_closed()
                self._server = None
        elif was_cut and not shape.cut:
            await self._listen()  # the same port again
            self._healed.set()

    async def _repoint(self, upstream: tuple[str, int], *, reset: bool) -> None:
        self.upstream = upstream
        if reset:
            await self._close_all(reset=True)

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._close_all(reset=False)

    async def _close_all(self, *, reset: bool) -> int:
        pairs = list(self._pairs)
        for a, b in pairs:
            for writer in (a, b):
                if reset:
                    _linger_zero(writer)
                writer.close()
        self._pairs.clear()
        if reset:
            self.resets_total += len(pairs)
        return len(pairs)

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), timeout=5
            )
        except (OSError, TimeoutError):
            _linger_zero(client)  # the far side is not there: the client sees a reset
            client.close()
            return
        self.connections_total += 1
        pair = (client, upstream)
        self._pairs.add(pair)
        try:
            await asyncio.gather(
                self._pump(client_reader, upstream, _Direction()),
                self._pump(upstream_reader, client, _Direction()),
            )
        finally:
            self._pairs.discard(pair)
            for writer in pair:
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: _Direction
    ) -> None:
        """Read as bytes arrive and release each chunk ``latency`` after its arrival: a
        reader and a writer, so that a chunk held does not delay reading the next (a
        link carries many messages at once, as a WAL stream does)."""
        # bounded: while the link is cut or throttled, reading stops once this much is
        # held and the sender's TCP window closes, as on a real link
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=HELD_CHUNKS)
        sender = asyncio.ensure_future(self._release(held, writer, way))
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while True:
                    data = await reader.read(CHUNK)
                    await held.put((time.monotonic(), data))
                    if not data:
                        break
            await sender  # what was read goes on first
        finally:
            sender.cancel()

    async def _release(
        self, held: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter,
        way: _Direction,
    ) -> None:  # fmt: skip
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                arrived, data = await held.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                await self._hold(arrived, data, way)
                writer.write(data)
                await writer.drain()

    async def _hold(self, arrived: float, data: bytes, way: _Direction) -> None:
        """Wait as the link's shape says before ``data`` goes on: latency and jitter from
        its arrival (order kept), a retransmission timeout when it is "lost", then the
        bandwidth, and while cut, until healed."""
        shape = self.shape
        delay = shape.latency_ms + (
            self._random.uniform(0, shape.jitter_ms) if shape.jitter_ms else 0
        )
        if shape.loss_percent and self._random.uniform(0, 100) < shape.loss_percent:
            # TCP resends a lost segment after its retransmission timeout, and nothing
            # after it is delivered before it (head-of-line blocking)
            delay += RETRANSMIT_MS
        release = max(arrived + delay / 1000, way.released_at)
        way.released_at = release
        now = time.monotonic()
        if release > now:
            await asyncio.sleep(release - now)
        if shape.bandwidth_kbps is not None:
            await self._throttle(len(data), shape.bandwidth_kbps * 1024, way)
        if not self._healed.is_set():
            await self._healed.wait()

    @staticmethod
    async def _throttle(size: int, bytes_per_s: float, way: _Direction) -> None:
        now = time.monotonic()
        burst = bytes_per_s / 10  # 100 ms worth
        way.tokens = min(burst, way.tokens + (now - (way.refilled_at or now)) * bytes_per_s)
        way.refilled_at = now
        way.tokens -= size
        if way.tokens < 0:
            await asyncio.sleep(-way.tokens / bytes_per_s)


def _linger_zero(writer: asyncio.StreamWriter) -> None:
    """Make close() send an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def shaped(link: NetLink, **changes: Any) -> LinkShape:
    """The link's current shape with ``changes``."""
    return replace(link.shape, **changes)
