"""The interrupt trials in `make test`: the failure rows of the "leave the platform as
you found it" issue, as fixed cases on a real sandbox, each judged by witnesses other
than the drill's own verdict (the platform's shape before and after, the SQL/HTTPS
witness of ``ledgerdrill.platforms.sandbox.witness``, an empty journal, no Locust left).

It runs ``benchmarks/interrupt_trials.py`` as is (the 100-trial figure in SECURITY.md
comes from the same script, drawing random trials over every scenario, signal and
phase), with its own sandbox in its own temporary state folder. About 100 s for the
four cases on the 2-core machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = [
    # The runbook-actions issue's rows that found bugs, and the hardest windows; the rows
    # whose kill lands in an approval wait (region-outage and corruption + restore, both
    # "awaiting-approval") and corruption's "between-stages" run in the benchmark's draw
    # (`benchmarks/interrupt_trials.py --trials N`), to keep `make test` within 15 min.
    # A region outage killed after the DR runbook, while observing: cleanup fails back,
    # and the DR region's ERP replica must be warm again (it sat on a dead connection once)
    "region-outage:SIGKILL:reverting-or-observing",
    # corruption + point-in-time restore killed inside the restore
    "database-corruption-pitr:SIGKILL:runbook-running",
    # Ctrl-C inside a runbook step ("bad-release:SIGINT:runbook-running") is in the draw:
    # the race it found once in CI (a journal entry left pending) it hit in one run of
    # several; tests/unit/test_interrupt_windows.py sends the SIGINT at that very instant
    # and fails on the old code every time. Ctrl-C during a fault: tests/plugin.
    # the zone of the synchronous standby lost, twice in a row (the second starts from
    # whatever the first left)
    "zone-outage-standby:none:-",
    "zone-outage-standby:none:-",
]


def test_the_issue_rows_leave_the_platform_as_found(tmp_path: Path) -> None:
    # --resume: each trial appended to a file as it finishes (long series run in chunks)
    record = tmp_path / "trials.jsonl"
    args = [a for case in CASES for a in ("--case", case)] + ["--resume", str(record)]
    command = [sys.executable, str(REPO / "benchmarks" / "interrupt_trials.py"), *args]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=1500
    )  # fmt: skip
    out = done.stdout + done.stderr
    print(out)  # the table, for the CI log
    trials = re.findall(r"^trial +\d+: .*$", out, flags=re.M)
    assert len(trials) == len(CASES), out[-3000:]
    assert not [t for t in trials if "NOT BACK" in t], out[-5000:]
    # a kill must land where it was aimed, or the case proves nothing
    aimed = [c.split(":")[2] for c in CASES]
    for line, phase in zip(trials, aimed, strict=True):
        assert phase == "-" or f" {phase} " in line, line
    last = out.strip().splitlines()[-1]
    assert (
        last
        == f"trials back at baseline: {len(CASES)}/{len(CASES)} (goal {len(CASES)}/{len(CASES)}) PASS"
    ), last
    assert done.returncode == 0, out[-3000:]
    # the file holds every trial; run again, nothing is run twice and the summary is the
    # file's (no sandbox is even started)
    assert len(record.read_text().splitlines()) == len(CASES)
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert f"{len(CASES)} trial(s) already in" in again.stdout, again.stdout + again.stderr
    assert again.stdout.strip().splitlines()[-1] == last and again.returncode == 0
