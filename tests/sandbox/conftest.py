"""One running sandbox for the tests that drive it end to end (started once, ~10 s).

Its state folder is made with ``mkdtemp`` under /tmp (0755): PostgreSQL runs as
``nobody`` when the tests run as root, and pytest's own tmp folders are 0700. The
sandbox is taken down at the end of the session even when tests fail, and the
teardown checks that no process it started survived.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.targets import SandboxPlatformSettings


@dataclass
class LiveSandbox:
    state_dir: Path
    status: dict[str, Any]
    platform: SandboxPlatform

    def refresh(self) -> dict[str, Any]:
        found = control.read_status(self.state_dir)
        assert found is not None, "the sandbox daemon died"
        self.status = found
        return found


def _descendants_of(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="session")
def sandbox() -> Iterator[LiveSandbox]:
    state_dir = Path(tempfile.mkdtemp(prefix="ldsbx-", dir="/tmp"))
    os.chmod(state_dir, 0o755)
    settings = SandboxPlatformSettings(
        state_dir=str(state_dir), eviction_timeout=3.0, ha_detection_window=1.5
    )
    started: list[int] = []
    try:
        status = control.up(state_dir, settings, timeout_s=120)
        daemon = control.daemon_pid(state_dir)
        assert daemon is not None
        started = [daemon, *_descendants_of(daemon)]
        platform = SandboxPlatform("sandbox-test", state_dir, default_topology())
        yield LiveSandbox(state_dir, status, platform)
    finally:
        control.down(state_dir)
        survivors = [pid for pid in started if psutil.pid_exists(pid)
                     and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
        # and anything started later (restarts, stand-ins) names the state folder
        survivors += [p.pid for p in psutil.process_iter(["cmdline"])
                      if str(state_dir) in " ".join(p.info["cmdline"] or [])]  # fmt: skip
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not survivors, f"processes left running after sandbox down: {survivors}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each test's call report on the item: a fixture's teardown can then tell a
    test that passed (and must have left shared state as it found it) from one that
    failed (``pgtools.kept``)."""
    report = yield
    if report.when == "call":
        item.ledgerdrill_call_report = report  # type: ignore[attr-defined]
    return report
