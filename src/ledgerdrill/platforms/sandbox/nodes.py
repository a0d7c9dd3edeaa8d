"""Node state on the sandbox, acted on with real signals through pid files.

A node is a group of processes: their pid files live in ``<state>/nodes/<node>/``.
Crash = SIGKILL every one and mark the node powered off (``down`` marker: the
supervisor restarts nothing there); freeze = SIGSTOP every one (``frozen`` marker);
restore = SIGCONT and remove the markers, after which the supervisor starts what is
missing, as a node coming back would.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import psutil

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.sandbox.procs import read_pid, wait_until
from ledgerdrill.processes import pid_alive

DOWN, FROZEN = "down", "frozen"


class NodeProcesses:
    def __init__(self, state_dir: Path, node: str) -> None:
        self.node = node
        self.folder = state_dir / "nodes" / node

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for pid_file in sorted(self.folder.glob("*.pid")):
            pid = read_pid(pid_file)
            if pid is not None:
                found[pid_file.stem] = pid
        return found

    def _marker(self, name: str) -> Path:
        return self.folder / name

    def state(self) -> NodeState:
        """Read from the processes themselves (independent of our markers): no live
        process is STOPPED, every live one in the stopped state is FROZEN."""
        statuses = []
        for pid in self.pids().values():
            if not pid_alive(pid):
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                statuses.append(psutil.Process(pid).status())
        if not statuses:
            return NodeState.STOPPED
        if all(status == psutil.STATUS_STOPPED for status in statuses):
            return NodeState.FROZEN
        return NodeState.RUNNING

    def _signal_all(self, sig: signal.Signals) -> list[psutil.Process]:
        hit: list[psutil.Process] = []
        for pid in self.pids().values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                # a node's program may have children (PostgreSQL backends): they go too
                for member in [*proc.children(recursive=True), proc]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        member.send_signal(sig)
                        hit.append(member)
        return hit

    def crash(self) -> None:
        if not self.pids():
            raise PlatformError(f"sandbox node {self.node} runs no processes (is the sandbox up?)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._marker(DOWN).touch()  # first: the supervisor must not restart what we kill
        killed = self._signal_all(signal.SIGKILL)
        # SIGKILL is delivered asynchronously: the crash is done when they are gone. A
        # killed child of the sandbox daemon stays a zombie until the daemon reaps it --
        # dead all the same, so waiting for it to vanish would only slow the fault down
        wait_until(
            lambda: all(_dead(p) for p in killed),
            timeout_s=5,
            what=f"the processes on node {self.node} to die",
            interval_s=0.01,
        )

    def freeze(self) -> None:
        if not self.pids():
            raise PlatformError(f"sandbox node {self.node} runs no processes (is the sandbox up?)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._marker(FROZEN).touch()
        self._signal_all(signal.SIGSTOP)
        # SIGSTOP is asynchronous too: done when every process reports stopped
        wait_until(
            lambda: self.state() is NodeState.FROZEN, timeout_s=5, what=f"{self.node} to freeze"
        )

    def restore(self) -> None:
        """Idempotent: thaw whatever is stopped and let the supervisor restart the rest."""
        self._signal_all(signal.SIGCONT)
        for name in (FROZEN, DOWN):
            with contextlib.suppress(FileNotFoundError):
                self._marker(name).unlink()


def _dead(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
