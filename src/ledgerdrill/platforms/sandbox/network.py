"""``NetworkControl`` on the sandbox: its links (``links.py``, hosted by the daemon) are
read and shaped through the control API, and measured from this process.

The measurement is PostgreSQL's own: every link of the sandbox ends at a database server,
and a server answers an ``SSLRequest`` (protocol 3: length 8, code 80877103; "Message
Formats" in the PostgreSQL documentation) with one byte at once, before any login. A
round trip through the link is therefore a connection, eight bytes one way and one back,
timed by this client -- not the link's account of itself.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import LinkMeasurement, LinkState

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
MEASURE_TIMEOUT_S = 3.0
SHAPE_FIELDS = ("latency_ms", "jitter_ms", "loss_percent", "bandwidth_kbps", "cut")


def postgres_round_trip_ms(port: int, timeout_s: float = MEASURE_TIMEOUT_S) -> float | None:
    """Connect and ask for TLS: the milliseconds until the server's one-byte answer
    after the request was sent, or None when it did not get through."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            began = time.perf_counter()
            sock.sendall(SSL_REQUEST)
            answer = sock.recv(1)
            took = (time.perf_counter() - began) * 1000
    except OSError:
        return None
    return took if answer in (b"N", b"S") else None


class NetworkOps:
    """The sandbox platform's ``NetworkControl`` methods (mixed into SandboxPlatform)."""

    def _call(self, operation: str, **params: Any) -> Any:
        raise NotImplementedError

    def _link_rows(self) -> dict[str, dict[str, Any]]:
        rows = self._call("links/status")
        return {str(row["name"]): row for row in rows}

    def _link_row(self, name: str) -> dict[str, Any]:
        rows = self._link_rows()
        if name not in rows:
            raise PlatformError(f"no link {name!r} (links: {', '.join(sorted(rows)) or 'none'})")
        return rows[name]

    def links(self) -> list[str]:
        return sorted(self._link_rows())

    def link_state(self, name: str) -> LinkState:
        shape = self._link_row(name)["shape"]
        return LinkState(name, **{k: shape[k] for k in SHAPE_FIELDS if k in shape})

    def set_link(self, state: LinkState) -> None:
        self._call("links/shape", name=state.name,
                   **{k: getattr(state, k) for k in SHAPE_FIELDS})  # fmt: skip

    def measure_link(self, name: str, count: int) -> LinkMeasurement:
        port = int(self._link_row(name)["port"])
        trips = [postgres_round_trip_ms(port) for _ in range(count)]
        through = tuple(t for t in trips if t is not None)
        return LinkMeasurement(through, count - len(through), count)
