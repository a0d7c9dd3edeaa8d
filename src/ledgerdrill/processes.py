"""Process facts every part of the harness needs (the fault journal, cleanup, the CLI),
kept apart from any backend."""

from __future__ import annotations

import psutil


def pid_alive(pid: int) -> bool:
    """True for a live process (a zombie counts as dead)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
