"""A run SIGKILLed mid-fault leaves its journal; `ledgerdrill cleanup` reverts the fault."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

SCENARIO = """
import time
from ledgerdrill.faults import NodeCrash

def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node="node-b")):
        time.sleep(60)
"""


def history(folder: Path) -> list[str]:
    # under the fake platform's own flock: unlocked, a read can land between its truncate
    # and its write and see an empty file
    with open(folder / "state.json", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        state = json.loads(handle.read())
    return [f"{node}:{status}" for _, node, status in state["log"]]


def kill_mid_fault(folder: Path) -> None:
    """Run the scenario in ``folder`` and SIGKILL it once its fault is in place."""
    (folder / "test_kill.py").write_text(SCENARIO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "test_kill.py", "--target=target.yaml",
         "-p", "no:cacheprovider", "-q"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ((folder / "state.json").exists() and "node-b:stopped" in history(folder)):
        assert time.monotonic() < deadline, "fault never injected"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_cleanup_reverts_fault_of_killed_run(tmp_path: Path, fake_target) -> None:  # type: ignore[no-untyped-def]
    fake_target(heal="null")
    kill_mid_fault(tmp_path)
    assert history(tmp_path) == ["node-b:stopped"]  # nothing reverted it: it was killed
    journal = list((tmp_path / ".ledgerdrill" / "journal").glob("*.jsonl"))
    assert len(journal) == 1

    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "cleanup"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reverted node-crash(node=node-b) on fake-lab" in done.stdout
    # and the platform read back against its shape before the drill (journaled with it)
    assert "fake-lab: the platform reads back as before the drill" in done.stdout
    assert history(tmp_path) == ["node-b:stopped", "node-b:running"]
    assert not list((tmp_path / ".ledgerdrill" / "journal").glob("*.jsonl"))

    again = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "cleanup"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0
    assert "journal is empty" in again.stdout


def test_cleanup_that_cannot_restore_the_baseline_says_so_and_exits_non_zero(
    tmp_path: Path, fake_target
) -> None:  # type: ignore[no-untyped-def]
    """Issue 29: "1 reverted" is not "restored". The fault is reverted, but something
    else the drill left (here: another node drained) keeps the platform from reading back
    as it did at the gate: cleanup names the difference and exits non-zero."""
    target = fake_target(heal="null").read_text()
    (tmp_path / "target.yaml").write_text(
        target.replace("  blast_radius:", "  baseline_timeout: 1s\n  blast_radius:")
    )
    kill_mid_fault(tmp_path)
    from ledgerdrill.platforms.fake import FakePlatform

    FakePlatform("fake-lab", tmp_path / "state.json", {"node-c": "c"}).drain_node("node-c")
    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "cleanup"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 reverted, 0 not reverted" in done.stdout
    assert "node node-c is drained (was running)" in done.stdout
    assert "NOT back to its baseline" in done.stderr
