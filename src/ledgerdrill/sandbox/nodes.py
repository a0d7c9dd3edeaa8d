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
from ledgerdrill.sandbox.procs import pid_alive, read_pid

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
        if self._marker(DOWN).exists():
            return NodeState.STOPPED
        if self._marker(FROZEN).exists():
            return NodeState.FROZEN
        live = [pid for pid in self.pids().values() if pid_alive(pid)]
        return NodeState.RUNNING if live else NodeState.STOPPED

    def _signal_all(self, sig: signal.Signals) -> list[int]:
        hit = []
        for pid in self.pids().values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                # a node's program may have children (PostgreSQL backends): they go too
                for member in [*proc.children(recursive=True), proc]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        member.send_signal(sig)
                hit.append(pid)
        return hit

    def crash(self) -> None:
        if not self.pids():
            raise PlatformError(f"sandbox node {self.node} runs no processes (is the sandbox up?)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._marker(DOWN).touch()  # first: the supervisor must not restart what we kill
        self._signal_all(signal.SIGKILL)

    def freeze(self) -> None:
        if not self.pids():
            raise PlatformError(f"sandbox node {self.node} runs no processes (is the sandbox up?)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._marker(FROZEN).touch()
        self._signal_all(signal.SIGSTOP)

    def restore(self) -> None:
        """Idempotent: thaw whatever is stopped and let the supervisor restart the rest."""
        self._signal_all(signal.SIGCONT)
        for name in (FROZEN, DOWN):
            with contextlib.suppress(FileNotFoundError):
                self._marker(name).unlink()
