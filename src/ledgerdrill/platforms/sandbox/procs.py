"""Start and stop the sandbox's real programs, always by pid.

Every process gets its own log file and a pid file, so a later
``ledgerdrill sandbox down`` (or ``cleanup`` after a SIGKILLed run) can find and
stop it without ever matching on command lines.  When the harness runs as root,
programs that refuse root (PostgreSQL's ``initdb`` and ``postgres``) run as an
unprivileged user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from ledgerdrill.errors import PlatformError
from ledgerdrill.processes import pid_alive

UNPRIVILEGED_USER = "nobody"


def port_open(port: int, timeout_s: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout_s):
        return True
    return False


def running_as_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class RunAs:
    """The user a program runs as: ourselves, or ``nobody`` when we are root."""

    uid: int
    gid: int
    name: str

    @staticmethod
    def for_unprivileged_programs() -> RunAs:
        if not running_as_root():
            return RunAs(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name)
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)

    @property
    def is_other_user(self) -> bool:
        return self.uid != os.getuid()

    def give(self, path: Path) -> None:
        """Make ``path`` (recursively) owned by this user, so the program can write it."""
        if not self.is_other_user:
            return
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)

    def subprocess_kwargs(self) -> dict[str, object]:
        if not self.is_other_user:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    run_as: RunAs | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
    cwd: Path | None = None,
) -> str:
    """Run a short command to completion; a failure is a ``PlatformError`` with its output."""
    kwargs = run_as.subprocess_kwargs() if run_as else {}
    try:
        done = subprocess.run(  # noqa: PLW1510 - checked below with a better message
            [str(a) for a in args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            **kwargs,  # type: ignore[call-overload]
        )
    except subprocess.TimeoutExpired as exc:
        raise PlatformError(f"{Path(str(args[0])).name} did not finish in {timeout_s}s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise PlatformError(f"{Path(str(args[0])).name} failed ({done.returncode}): {tail}")
    return str(done.stdout)


@dataclass
class ManagedProcess:
    """One long-running program of the sandbox, known by name and pid file."""

    name: str
    args: Sequence[str]
    log_path: Path
    pid_path: Path
    env: Mapping[str, str] | None = None
    run_as: RunAs | None = None
    cwd: Path | None = None

    def start(self) -> int:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        kwargs = self.run_as.subprocess_kwargs() if self.run_as else {}
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(  # the pid file, not this handle, is how we find it again
                list(self.args),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,  # a Ctrl-C at the terminal must not reach it
                **kwargs,  # type: ignore[call-overload]
            )
        self.pid_path.write_text(f"{proc.pid}\n")
        return int(proc.pid)

    @property
    def pid(self) -> int | None:
        return read_pid(self.pid_path)

    def alive(self) -> bool:
        pid = self.pid
        return pid is not None and pid_alive(pid)

    def stop(self, timeout_s: float = 10.0) -> None:
        pid = self.pid
        if pid is not None:
            stop_pid(pid, timeout_s=timeout_s)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def stop_pid(pid: int, *, timeout_s: float = 10.0) -> None:
    """SIGCONT (a frozen process cannot exit), SIGTERM, then SIGKILL after the timeout."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(psutil.Error):
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            proc.wait(timeout=5)
    except psutil.Error:
        pass


def wait_until(predicate: object, *, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate()`` until true; ``PlatformError`` naming ``what`` after the timeout."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise PlatformError(f"timed out after {timeout_s}s waiting for {what}")
