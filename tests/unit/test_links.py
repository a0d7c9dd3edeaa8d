"""``sandbox/links.py``: the daemon's named links, their ports kept across a restart (a
standby's primary_conninfo names them), and the control API's operations on them."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.links import Links, link_name
from ledgerdrill.platforms.sandbox.netlink import LinkShape


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(ConnectionResetError):  # a reset is a test's
                while data := conn.recv(1024):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        server.close()


def round_trip(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"ping")
        return conn.recv(16)


def test_a_link_carries_to_its_target_and_keeps_its_port_across_a_restart(
    tmp_path: Path, echo: int
) -> None:
    links = Links(tmp_path)
    try:
        port = links.port("db-b", "db-a", echo)
        assert port != echo and round_trip(port) == b"ping"
        assert links.port("db-b", "db-a", echo) == port  # one link per pair
        saved = json.loads((tmp_path / "links.json").read_text())
        assert saved == {"ports": {"db-b>db-a": port}}
    finally:
        links.stop()
    again = Links(tmp_path)  # the daemon restarted: the standby still names that port
    try:
        again.restore({"db-a": echo, "db-c": 1})
        assert again.names() == ["db-b>db-a"]
        assert again.get("db-b>db-a").port == port and round_trip(port) == b"ping"
    finally:
        again.stop()


def test_the_control_api_shapes_resets_and_reports_a_link(tmp_path: Path, echo: int) -> None:
    links = Links(tmp_path)
    ops = links.operations()
    try:
        port = links.port("erp", "db-a", echo)
        shape = ops["links/shape"]({"name": link_name("erp", "db-a"), "latency_ms": 30})
        assert shape["latency_ms"] == 30 and shape["cut"] is False
        with socket.create_connection(("127.0.0.1", port), timeout=5) as held:
            held.sendall(b"x")
            assert held.recv(4) == b"x"
            (row,) = ops["links/status"]({})
            assert row["name"] == "erp>db-a" and row["open"] == 1 and row["upstream"] == echo
            assert ops["links/reset"]({"name": "erp>db-a"}) == 1
        with pytest.raises(PlatformError, match=r"no link 'erp>db-z' \(links: erp>db-a\)"):
            ops["links/shape"]({"name": "erp>db-z", "cut": True})
        with pytest.raises(ValueError, match="0 or more milliseconds"):
            ops["links/shape"]({"name": "erp>db-a", "latency_ms": -1})
    finally:
        links.stop()


def test_a_target_on_a_new_port_takes_the_new_connections(tmp_path: Path, echo: int) -> None:
    links = Links(tmp_path)
    try:
        port = links.port("erp", "db-a", 1)  # nothing listens on 1: the old port
        assert links.port("erp", "db-a", echo) == port  # same link, upstream moved
        assert round_trip(port) == b"ping"
    finally:
        links.stop()


def test_isolating_a_region_cuts_its_links_and_rejoining_puts_back_their_shapes(
    tmp_path: Path, echo: int
) -> None:
    wan = LinkShape(latency_ms=10)
    links = Links(tmp_path, lambda source, target: wan if "dr-db" in (source, target) else LinkShape())
    try:
        inside = links.port("db-b", "db-a", echo)
        across = links.port("dr-db", "db-a", echo)
        links.port("erp", "dr-db", echo)
        links.get("db-b>db-a").set_shape(LinkShape(latency_ms=3))  # a fault's, say
        assert sorted(links.isolate({"db-a", "db-b"})) == ["db-b>db-a", "dr-db>db-a"]
        for port in (inside, across):
            with pytest.raises(OSError):
                round_trip(port)
        assert round_trip(links.get("erp>dr-db").port) == b"ping"  # the other region's
        by_name = {row["name"]: row for row in links.status()}
        assert by_name["dr-db>db-a"]["default"] is False and by_name["erp>dr-db"]["default"]
        assert sorted(links.rejoin({"db-a", "db-b"})) == ["db-b>db-a", "dr-db>db-a"]
        assert links.get("db-b>db-a").shape == LinkShape(latency_ms=3)  # as it was found
        assert links.get("dr-db>db-a").shape == wan
        assert round_trip(inside) == b"ping" and round_trip(across) == b"ping"
    finally:
        links.stop()
    # a daemon restarted while isolated has no shapes kept: rejoin gives the default
    again = Links(tmp_path, lambda source, target: wan)
    try:
        again.restore({"db-a": echo})
        again.get("dr-db>db-a").set_shape(LinkShape(cut=True))
        assert again.rejoin({"db-a"}) == ["dr-db>db-a"]
        assert again.get("dr-db>db-a").shape == wan
    finally:
        again.stop()
