"""The short form of the interrupt trials in `make test`: ten drills on the sandbox,
each interrupted at a random moment (SIGINT, SIGTERM, or SIGKILL then `ledgerdrill
cleanup`), and the sandbox must be fully healthy after every one.

It runs ``benchmarks/interrupt_trials.py`` as is (the 100-trial figure in SECURITY.md
comes from the same script), with its own sandbox in its own temporary state folder:
not the session sandbox of this folder's other tests, nor the repo's
``.ledgerdrill/sandbox`` that ``make gameday`` uses. About two to three minutes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRIALS = 10


def test_ten_interrupted_drills_leave_the_sandbox_clean(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "interrupt_trials.py"),
         "--trials", str(TRIALS), "--seed", "10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = done.stdout + done.stderr
    print(out)  # the table, for the CI log
    trials = re.findall(r"^trial +\d+: .*$", out, flags=re.M)
    assert len(trials) == TRIALS, out[-3000:]
    dirty = [t for t in trials if "NOT CLEAN" in t]
    assert not dirty, "\n".join(dirty)
    assert f"{TRIALS} of {TRIALS} trials left the sandbox fully healthy" in out, out[-3000:]
    assert done.returncode == 0, out[-3000:]
