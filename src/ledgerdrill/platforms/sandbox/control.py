"""``ledgerdrill sandbox up | status | down``: the daemon's lifecycle, seen from outside.

The sandbox runs as one daemon process (``python -m ledgerdrill.platforms.sandbox.daemon``)
that starts every component and then supervises them; it writes ``status.json``
(0600: it holds the demo user's password) and appends decisions to
``events.jsonl``. ``down`` stops the daemon by pid and then sweeps any pid file
left under the state folder, so nothing keeps running and no port stays bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ledgerdrill.errors import ConfigError, PlatformError
from ledgerdrill.platforms.sandbox.procs import ManagedProcess, read_pid, stop_pid
from ledgerdrill.processes import pid_alive
from ledgerdrill.targets import SandboxPlatformSettings, Target, load_target

STATUS_FILE = "status.json"
DAEMON_PID = "daemon.pid"


def status_path(state_dir: Path) -> Path:
    return state_dir / STATUS_FILE


def daemon_pid(state_dir: Path) -> int | None:
    pid = read_pid(state_dir / DAEMON_PID)
    return pid if pid is not None and pid_alive(pid) else None


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The daemon's last status, or None when no sandbox daemon runs."""
    if daemon_pid(state_dir) is None:
        return None
    try:
        data: dict[str, Any] = json.loads(status_path(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"phase": "starting"}
    return data


def write_status(state_dir: Path, status: dict[str, Any]) -> None:
    path = status_path(state_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(status, out, indent=2, default=str)
    tmp.replace(path)


def up(
    state_dir: Path,
    settings: SandboxPlatformSettings,
    *,
    timeout_s: float = 120.0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Start the daemon (unless one runs) and wait until it reports ``ready``. A sandbox
    this call started is taken down again if the wait ends any other way -- a failure, a
    timeout, or an interrupt (Ctrl-C, SIGTERM) while it was starting."""
    state_dir.mkdir(parents=True, exist_ok=True)
    running = read_status(state_dir)
    if running is not None and running.get("phase") == "ready":
        return running
    started_here = running is None
    if started_here:
        settings_file = state_dir / "settings.json"
        settings_file.write_text(settings.model_dump_json())
        status_path(state_dir).unlink(missing_ok=True)
        ManagedProcess(
            "sandbox-daemon",
            [
                sys.executable,
                "-m",
                "ledgerdrill.platforms.sandbox.daemon",
                "--state-dir",
                str(state_dir),
            ],
            log_path=state_dir / "logs" / "daemon.log",
            pid_path=state_dir / DAEMON_PID,
        ).start()
    try:
        return _wait_ready(state_dir, timeout_s, progress)
    except BaseException:
        if started_here:  # half-started programs must not outlive the call that started them
            down(state_dir)
        raise


def _wait_ready(
    state_dir: Path, timeout_s: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        status = read_status(state_dir)
        if status is None:
            raise PlatformError(
                f"the sandbox daemon exited while starting:\n{_log_tail(state_dir)}"
            )
        step = str(status.get("step", status.get("phase", "")))
        if step != seen:
            progress(step)
            seen = step
        if status.get("phase") == "ready":
            return status
        if status.get("phase") == "failed":
            down(state_dir)
            raise PlatformError(f"the sandbox failed to start: {status.get('error')}")
        time.sleep(0.1)
    down(state_dir)
    raise PlatformError(
        f"the sandbox was not ready after {timeout_s:.0f}s:\n{_log_tail(state_dir)}"
    )


def down(state_dir: Path, *, timeout_s: float = 30.0) -> list[str]:
    """Stop the daemon, then anything a pid file under the state folder still names."""
    stopped: list[str] = []
    pid = daemon_pid(state_dir)
    if pid is not None:
        stop_pid(pid, timeout_s=timeout_s)
        stopped.append(f"daemon (pid {pid})")
    (state_dir / DAEMON_PID).unlink(missing_ok=True)
    for pid_file in sorted(state_dir.glob("**/*.pid")) if state_dir.exists() else []:
        leftover = read_pid(pid_file)
        if leftover is not None and pid_alive(leftover):
            stop_pid(leftover, timeout_s=10)
            stopped.append(f"{pid_file.stem} (pid {leftover})")
        pid_file.unlink(missing_ok=True)
    status_path(state_dir).unlink(missing_ok=True)
    return stopped


def _log_tail(state_dir: Path, chars: int = 3000) -> str:
    try:
        return (state_dir / "logs" / "daemon.log").read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no daemon log)"


@contextlib.contextmanager
def running(
    state_dir: Path,
    settings: SandboxPlatformSettings,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> Iterator[bool]:
    """The sandbox, running for the ``with`` block: started if it was not (and then taken
    down again afterwards, whatever happens); yields whether this block started it."""
    started = read_status(state_dir) is None
    if started:
        progress(f"starting the sandbox in {state_dir} ...")
        up(state_dir, settings, progress=progress)
    try:
        yield started
    finally:
        if started:
            down(state_dir)


def sandbox_target(path: Path) -> tuple[Target, SandboxPlatformSettings, Path]:
    """A target file that must name the sandbox: (target, its settings, state folder);
    ``ConfigError`` naming the file otherwise."""
    target = load_target(path)
    if not isinstance(target.platform, SandboxPlatformSettings):
        raise ConfigError(f"{path}: platform.kind is {target.platform.kind}, not sandbox")
    return target, target.platform, target.resolve_path(target.platform.state_dir)
