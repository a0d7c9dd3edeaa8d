"""Freezing a process tree as a whole (the sandbox's PostgreSQL hang), with the two races
a loaded host exposes: a child that exited just before the freeze (a zombie its stopped
parent cannot reap) and children forked while the signals go out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from ledgerdrill.platforms.sandbox.postgres import proctree

ZOMBIE_PARENT = """
import os, time
if os.fork() == 0:
    os._exit(0)          # exits at once and is never reaped: a zombie
time.sleep(60)
"""

FORKING_PARENT = """
import os, time
for _ in range(600):     # a child every 10 ms, each living 2 s, like new backends
    if os.fork() == 0:
        time.sleep(2)
        os._exit(0)
    time.sleep(0.01)
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
"""


@pytest.fixture
def tree(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", request.param], start_new_session=True)
    try:
        yield proc
    finally:
        proctree.thaw_all(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_for(predicate: object, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("tree", [ZOMBIE_PARENT], indirect=True)
def test_a_zombie_child_does_not_block_the_freeze(tree: subprocess.Popen[bytes]) -> None:
    root = psutil.Process(tree.pid)
    _wait_for(
        lambda: any(c.status() == psutil.STATUS_ZOMBIE for c in root.children()), "the zombie"
    )
    proctree.freeze_all(tree.pid, timeout_s=3)
    assert root.status() == psutil.STATUS_STOPPED
    assert proctree.all_stopped(tree.pid)


@pytest.mark.parametrize("tree", [FORKING_PARENT], indirect=True)
def test_children_forked_during_the_freeze_are_stopped_too(tree: subprocess.Popen[bytes]) -> None:
    root = psutil.Process(tree.pid)
    _wait_for(lambda: len(root.children()) >= 5, "children")
    proctree.freeze_all(tree.pid, timeout_s=3)
    live = [p for p in proctree.members(tree.pid) if p.status() != psutil.STATUS_ZOMBIE]
    assert live and all(p.status() == psutil.STATUS_STOPPED for p in live)
    before = {p.pid for p in proctree.members(tree.pid)}
    time.sleep(0.2)  # a frozen tree forks nothing more
    assert {p.pid for p in proctree.members(tree.pid)} <= before
