"""Listening ports for the programs the harness starts on 127.0.0.1.

A port asked of the kernel with ``bind(("127.0.0.1", 0))`` comes from its *ephemeral*
range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default) -- the range
every outgoing connection's source port is drawn from too. Between choosing such a port
and the program binding it (a sandbox starts a dozen programs, each opening connections
to the database, Redis and each other), an outgoing connection can take it: seen here as
an ERP replica failing to start with ``[Errno 98] address already in use``. Ports below
the ephemeral range are never handed to outgoing connections, so we choose there, check
that nothing listens, and never hand out one port twice in this process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LINUX_DEFAULT = (32768, 60999)
_SPAN = 12_000  # ports to choose among, below the ephemeral range
_TRIES = 200
_handed_out: set[int] = set()
_lock = threading.Lock()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _LINUX_DEFAULT
    return low, high


def _candidates() -> range:
    low, high = ephemeral_range()
    if low - 1024 >= 2_000:
        return range(max(1024, low - _SPAN), low)
    return range(high + 1, 65_536)  # an ephemeral range reaching down low: use above it


def _listenable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, outside the ephemeral range,
    not handed out before by this process."""
    candidates = _candidates()
    with _lock:
        for _ in range(_TRIES):
            port = random.choice(candidates)
            if port not in _handed_out and _listenable(port):
                _handed_out.add(port)
                return port
        # a crowded machine: let the kernel choose (the race above is then possible)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        _handed_out.add(port)
        return port
