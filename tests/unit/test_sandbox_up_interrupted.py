"""A sandbox interrupted while it starts is taken down again, not left running (found by
interrupting a backgrounded benchmark during start-up: the daemon and every program it
had started stayed up, and the supervisor restarted what a late cleanup stopped)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest

from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.settings import SandboxPlatformSettings
from ledgerdrill.processes import pid_alive


class StandInDaemon:
    """Starts a process that never reports ready, with the daemon's pid file."""

    started: ClassVar[list[subprocess.Popen[bytes]]] = []

    def __init__(self, _name: str, _argv: list[str], *, log_path: Path, pid_path: Path) -> None:
        self.pid_path = pid_path

    def start(self) -> StandInDaemon:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        StandInDaemon.started.append(proc)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.write_text(str(proc.pid))
        return self


class Clock:
    """control's view of ``time``: real, except that its N-th wait is interrupted (Ctrl-C,
    or SIGTERM's exit) -- only inside ``control``, not for the test's own waits."""

    def __init__(self, *, interrupt_at: int, interrupt: type[BaseException]) -> None:
        self.waits, self.interrupt_at, self.interrupt = 0, interrupt_at, interrupt
        self.monotonic = time.monotonic

    def sleep(self, seconds: float) -> None:
        self.waits += 1
        if self.waits == self.interrupt_at:
            raise self.interrupt()
        time.sleep(seconds)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_while_starting_takes_the_sandbox_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    monkeypatch.setattr(control, "ManagedProcess", StandInDaemon)
    monkeypatch.setattr(control, "time", Clock(interrupt_at=3, interrupt=interrupt))
    with pytest.raises(interrupt):
        control.up(tmp_path, SandboxPlatformSettings())
    daemon = StandInDaemon.started[-1]
    daemon.wait(timeout=30)  # stopped by the call that started it
    assert not pid_alive(daemon.pid)
    assert control.read_status(tmp_path) is None and not (tmp_path / control.DAEMON_PID).exists()


def test_a_sandbox_already_starting_is_not_taken_down_by_another_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the call that started the daemon takes it down: a second ``up`` waiting on
    someone else's start-up leaves it alone when interrupted."""
    monkeypatch.setattr(control, "ManagedProcess", StandInDaemon)
    StandInDaemon("d", [], log_path=tmp_path / "log", pid_path=tmp_path / control.DAEMON_PID).start()
    daemon = StandInDaemon.started[-1]

    monkeypatch.setattr(control, "time", Clock(interrupt_at=1, interrupt=KeyboardInterrupt))
    try:
        with pytest.raises(KeyboardInterrupt):
            control.up(tmp_path, SandboxPlatformSettings())
        assert pid_alive(daemon.pid)
    finally:
        daemon.kill()
        daemon.wait(timeout=10)
