"""Sandbox nodes are acted on with real signals, found through pid files."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from ledgerdrill.errors import PlatformError
from ledgerdrill.faults import NodeCrash, NodeFreeze
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
from ledgerdrill.platforms.sandbox.procs import ManagedProcess
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.processes import pid_alive


@pytest.fixture
def platform(tmp_path: Path):  # type: ignore[no-untyped-def]
    node_dir = tmp_path / "nodes" / "erp-b"
    proc = ManagedProcess(
        "erp",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=node_dir / "erp.log",
        pid_path=node_dir / "erp.pid",
    )
    proc.start()
    yield SandboxPlatform("sandbox", tmp_path, default_topology()), proc
    proc.stop()


def test_crash_kills_and_marks_down_until_restored(platform) -> None:  # type: ignore[no-untyped-def]
    sandbox, proc = platform
    assert sandbox.node_state("erp-b") is NodeState.RUNNING
    fault = NodeCrash(sandbox, "erp-b")
    fault.inject()
    assert fault.verify().summary == "node erp-b is stopped"
    assert not pid_alive(proc.pid)  # SIGKILLed (a zombie until reaped counts as dead)
    fault.revert()
    fault.revert()  # idempotent
    assert not (sandbox.state_dir / "nodes" / "erp-b" / "down").exists()


def test_freeze_stops_and_thaw_resumes(platform) -> None:  # type: ignore[no-untyped-def]
    sandbox, proc = platform
    fault = NodeFreeze(sandbox, "erp-b")
    fault.inject()
    assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED
    assert sandbox.node_state("erp-b") is NodeState.FROZEN
    fault.revert()
    assert psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED
    assert sandbox.node_state("erp-b") is NodeState.RUNNING


def test_unknown_node_and_empty_node_are_clear_errors(platform) -> None:  # type: ignore[no-untyped-def]
    sandbox, _ = platform
    with pytest.raises(PlatformError, match="no node 'erp-z'"):
        sandbox.crash_node("erp-z")
    with pytest.raises(PlatformError, match="is the sandbox up"):
        sandbox.crash_node("erp-a")


def test_inventory_by_region_and_zone(platform) -> None:  # type: ignore[no-untyped-def]
    sandbox, _ = platform
    regions = sandbox.describe()["regions"]
    assert regions["primary"]["a"] == ["erp-a", "db-a"]
    assert regions["dr"] == {"dr-1": ["dr-erp", "dr-db", "dr-cache"]}
