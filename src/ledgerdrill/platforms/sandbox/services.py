"""A service is one program the supervisor keeps running on a node of the sandbox.

``Replica`` services (ERP replicas) belong to a home node and may be rescheduled to
another node when theirs is lost, as a Kubernetes Deployment's pods would be;
``Pinned`` services (a database member, Redis) live with their node's storage and
only ever restart there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ledgerdrill.platforms.sandbox.procs import ManagedProcess, read_pid, stop_pid
from ledgerdrill.processes import pid_alive

# builds (argv, port) for a service placed on a node: a stand-in on another node gets
# its own port, and the supervisor tells the load balancer where each replica listens
Launcher = Callable[[str], tuple[Sequence[str], int | None]]


@dataclass
class Service:
    """One supervised program. Its pid file lives in the node folder it runs on, so node
    faults (which act on ``<state>/nodes/<node>/*.pid``) reach it wherever it runs."""

    name: str
    home_node: str
    state_dir: Path
    launcher: Launcher
    reschedulable: bool = False
    env: dict[str, str] | None = None
    node: str = ""
    port: int | None = None
    restarts: int = 0
    # set when the service runs away from home because its node was lost
    evicted_from: str | None = None
    home_port: int | None = None  # where the original listened, while a stand-in runs
    on_started: Callable[[Service], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.node:
            self.node = self.home_node

    def pid_path(self, node: str | None = None) -> Path:
        return self.state_dir / "nodes" / (node or self.node) / f"{self.name}.pid"

    def log_path(self, node: str | None = None) -> Path:
        return self.state_dir / "logs" / f"{self.name}@{node or self.node}.log"

    @property
    def pid(self) -> int | None:
        return read_pid(self.pid_path())

    def alive(self) -> bool:
        pid = self.pid
        return pid is not None and pid_alive(pid)

    def start(self, node: str | None = None) -> int:
        """Start on ``node`` (default: where it is). Moving leaves the old node's pid file
        alone: a frozen original must still be found there when the node is thawed."""
        if node is not None:
            self.node = node
        argv, self.port = self.launcher(self.node)
        process = ManagedProcess(self.name, list(argv), self.log_path(), self.pid_path(), self.env)
        pid = process.start()
        if self.on_started is not None:
            self.on_started(self)
        return pid

    def stop(self, timeout_s: float = 10.0, node: str | None = None) -> None:
        path = self.pid_path(node)
        pid = read_pid(path)
        if pid is not None:
            stop_pid(pid, timeout_s=timeout_s)
        path.unlink(missing_ok=True)

    def alive_on(self, node: str) -> bool:
        pid = read_pid(self.pid_path(node))
        return pid is not None and pid_alive(pid)
