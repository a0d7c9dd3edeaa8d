"""Listening ports chosen outside the kernel's ephemeral range (``ledgerdrill.ports``):
an outgoing connection's source port can never take one between choosing and binding."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ledgerdrill import ports


def test_ports_come_from_below_the_ephemeral_range_and_never_twice() -> None:
    low, high = ports.ephemeral_range()
    assert 0 < low <= high < 65_536
    chosen = [ports.free_port() for _ in range(300)]
    assert len(set(chosen)) == len(chosen)
    assert all(not low <= port <= high for port in chosen), [p for p in chosen if low <= p <= high]
    assert all(port >= 1024 for port in chosen)


def test_a_port_something_listens_on_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        free = ports.free_port()  # a port known free now, handed out: not chosen again
        ports._handed_out.discard(free)
        offered = iter([taken, free])
        monkeypatch.setattr(ports.random, "choice", lambda _candidates: next(offered))
        assert ports.free_port() == free


def test_an_unreadable_range_file_falls_back_to_linux_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "missing")
    assert ports.ephemeral_range() == (32768, 60999)
    (tmp_path / "odd").write_text("not numbers\n")
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "odd")
    assert ports.ephemeral_range() == (32768, 60999)


def test_an_ephemeral_range_reaching_down_low_is_avoided_from_above(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "range").write_text("1500\t40000\n")
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "range")
    chosen = [ports.free_port() for _ in range(50)]
    assert all(port > 40000 for port in chosen), chosen
