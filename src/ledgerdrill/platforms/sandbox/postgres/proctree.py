"""Signals for a PostgreSQL server as a whole: the postmaster and every child of it.

A host crash kills the backends, walsenders and background workers along with the
postmaster; killing only the postmaster would leave orphans that keep serving their
sessions (and the shared memory attached), which no real crash does. The postmaster
is started in a session of its own, so its process group is the server; children are
also found through ``/proc`` in case one ever left the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from ledgerdrill.errors import PlatformError


def members(pid: int) -> list[psutil.Process]:
    """The postmaster first, then its children (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        found = [root]
        found += root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    with contextlib.suppress(OSError):
        group = os.getpgid(pid)
        seen = {p.pid for p in found}
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if proc.pid not in seen and os.getpgid(proc.pid) == group:
                    found.append(proc)
    return found


def signal_all(pid: int, sig: signal.Signals) -> list[psutil.Process]:
    """Send ``sig`` to the postmaster first (so it cannot start new children), then to
    every child. Returns the processes signalled."""
    hit: list[psutil.Process] = []
    for proc in members(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
            hit.append(proc)
    return hit


def kill_all(pid: int, timeout_s: float = 5.0) -> None:
    """SIGKILL the server and wait until every process of it is gone (a crash).

    Dead means gone *or a zombie*: the orphaned backends are reaped by init whenever it
    gets to it (a second or two on some hosts), but a zombie runs no code and holds no
    socket, so the crash is complete when every process is one."""
    killed = signal_all(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.Error, ChildProcessError):
        psutil.Process(pid).wait(timeout=timeout_s)  # ours to reap, when we started it
    deadline = time.monotonic() + timeout_s
    while True:
        survivors = [p for p in killed if _alive(p)]
        if not survivors:
            return
        if time.monotonic() > deadline:
            raise PlatformError(f"PostgreSQL processes survived SIGKILL: {survivors}")
        time.sleep(0.01)


def freeze_all(pid: int, timeout_s: float = 5.0) -> None:
    """SIGSTOP the server and wait until every live process of it is stopped.

    A backend forked between listing the processes and the postmaster stopping would
    miss the first signal and keep running, so each pass signals whatever is not yet
    stopped (a loaded host widens that window)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [p for p in members(pid) if _alive(p) and _status(p) != psutil.STATUS_STOPPED]
        if not pending and all_stopped(pid):
            return
        if time.monotonic() > deadline:
            raise PlatformError(f"PostgreSQL processes did not stop on SIGSTOP: {pending}")
        for proc in pending:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGSTOP)
        time.sleep(0.01)


def thaw_all(pid: int) -> None:
    for proc in reversed(members(pid)):  # children first: the postmaster may then reap
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGCONT)


def all_stopped(pid: int) -> bool:
    """The postmaster and every live child stopped. A child that exited just before the
    freeze stays a zombie (its stopped parent cannot reap it): it runs nothing, so it
    does not count against the freeze."""
    procs = members(pid)
    return (
        bool(procs)
        and _status(procs[0]) == psutil.STATUS_STOPPED
        and all(_status(p) == psutil.STATUS_STOPPED for p in procs if _alive(p))
    )


def _status(proc: psutil.Process) -> str:
    try:
        return str(proc.status())
    except psutil.NoSuchProcess:
        return psutil.STATUS_DEAD


def _alive(proc: psutil.Process) -> bool:
    return _status(proc) not in (psutil.STATUS_DEAD, psutil.STATUS_ZOMBIE)
