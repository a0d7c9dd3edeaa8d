from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledgerdrill.errors import SafetyViolation
from ledgerdrill.safety.lock import TargetLock

HOLD = """
import sys, time
from pathlib import Path
from ledgerdrill.safety.lock import TargetLock
TargetLock(Path(sys.argv[1]), "sandbox", "run-other").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_second_run_on_same_target_is_refused_other_targets_are_not(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SafetyViolation, match=rf"run run-other \(pid {holder.pid}"):
            TargetLock(tmp_path, "sandbox", "run-me").acquire()
        with TargetLock(tmp_path, "staging", "run-me"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder was SIGKILLed: its lock is stale and simply free
    lock = TargetLock(tmp_path, "sandbox", "run-me").acquire()
    assert lock.previous is not None and lock.previous["pid"] == holder.pid
    assert json.loads(lock.path.read_text())["run_id"] == "run-me"
    lock.release()
    assert lock.path.read_text() == ""


def test_release_is_idempotent(tmp_path: Path) -> None:
    lock = TargetLock(tmp_path, "t", "r").acquire()
    lock.release()
    lock.release()
    start = time.monotonic()
    TargetLock(tmp_path, "t", "r2").acquire().release()
    assert time.monotonic() - start < 5
