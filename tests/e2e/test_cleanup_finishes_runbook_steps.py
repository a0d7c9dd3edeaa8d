"""`ledgerdrill cleanup` after a run killed inside a runbook step (the fake platform,
the journal written as the run writes it): the step is finished from its journaled
stages, never repeated; the fault it recovers from is not reverted a second way; and
the result is judged by reading the platform back against the journaled baseline."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.cleanup import cleanup
from ledgerdrill.faults import DatabaseCorruption
from ledgerdrill.platforms.registry import build_platform
from ledgerdrill.platforms.shape import read_shape
from ledgerdrill.runbook import PointInTimeRestore, RegionFailover, runbook_from_record
from ledgerdrill.safety.journal import FaultJournal
from ledgerdrill.targets import load_target

TARGET = """
name: fake-lab
environment: sandbox
platform:
  kind: fake
  state_file: state.json
  heal_after: null
  capabilities: [NodeControl, ZoneControl, DatabaseControl]
tiers:
  finance-core: {rto: 5s, rpo: 0s}
default_tier: finance-core
safety:
  allow: {nodes: ["node-*"], databases: ["*"]}
  baseline_timeout: 1s
"""


def fake_state(folder: Path) -> dict[str, Any]:
    with open(folder / "state.json", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        state: dict[str, Any] = json.loads(handle.read())
    return state


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def as_if_killed(journal: FaultJournal) -> None:
    """The run's pid is dead: cleanup must not wait for it."""
    pid = dead_pid()
    lines = [json.loads(raw) for raw in journal.path.read_text().splitlines()]
    for line in lines:
        if "pid" in line:
            line["pid"] = pid
    journal.path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def killed_during_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run's journal as SIGKILL left it: the bad change made, the restore made and
    journaled as a stage, the ERP not yet switched to it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "target.yaml").write_text(textwrap.dedent(TARGET))
    target = load_target(tmp_path / "target.yaml")
    platform = build_platform(target)
    baseline = read_shape(platform).to_json()
    journal = FaultJournal(tmp_path / ".ledgerdrill")
    fault = DatabaseCorruption(platform, "DELETE FROM ledger")
    fault.prepare()
    fault_id = journal.intent(fault.undo_record(), target="fake-lab", target_file=target.source,
                              platform="fake", baseline=baseline)  # fmt: skip
    fault.inject()
    journal.mark(fault_id, "injected")
    step = fault.recovery()
    step.prepare()
    step_id = journal.intent(step.record(), target="fake-lab", target_file=target.source,
                             platform="fake", baseline=baseline, resolves=fault_id)  # fmt: skip
    server = step.db.restore_to_point_in_time(str(step.point_in_time))
    journal.stage(step_id, "restored", {"server": server})
    platform.close()
    as_if_killed(journal)
    return tmp_path


def test_a_restore_made_before_the_kill_is_reused_and_adopted(
    killed_during_restore: Path,
) -> None:
    folder = killed_during_restore
    assert fake_state(folder)["database"]["restores"] == 1
    said: list[str] = []
    results = cleanup(folder / ".ledgerdrill", say=said.append)
    db = fake_state(folder)["database"]
    assert db["restores"] == 1, "cleanup restored a second time"
    # the ERP was switched to the restore, which settling adopted back into HA
    assert db["app"] == "db-a" and db["rows"] == 100
    assert not [n for n, m in db["members"].items() if m["role"] == "standalone"]
    assert any("adopted as the HA cluster's data" in line for line in said), said
    messages = [r.message for r in results]
    assert any(m.startswith("runbook step point-in-time-restore: finished") for m in messages)
    assert any("recovered by its runbook step, nothing to revert" in m for m in messages)
    assert all(r.ok for r in results), said
    assert [r.kind for r in results].count("baseline") == 1
    assert not list((folder / ".ledgerdrill" / "journal").glob("*.jsonl"))


def test_cleanup_says_loudly_when_the_platform_is_not_back(
    killed_during_restore: Path,
) -> None:
    folder = killed_during_restore
    # a second witness breaks the platform behind cleanup's back: no standby
    with open(folder / "state.json", "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        state = json.loads(handle.read())
        state["database"]["members"]["db-b"]["role"] = "stopped"
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(state))
    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "cleanup"],
        cwd=folder, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 reverted, 0 not reverted; 1 runbook step(s) finished" in done.stdout
    assert "database member db-b is stopped (was sync-standby)" in done.stdout + done.stderr


def test_a_failover_step_killed_half_way_is_left_to_its_outage_revert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that says "left to the fault's revert" is marked done without acting;
    the fault is still reverted (it was not recovered by a completed step)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "target.yaml").write_text(
        textwrap.dedent(TARGET).replace("DatabaseControl]", "DatabaseControl, RegionControl]")
    )
    target = load_target(tmp_path / "target.yaml")
    platform = build_platform(target)
    journal = FaultJournal(tmp_path / ".ledgerdrill")
    step = RegionFailover(platform, region="dr")
    step_id = journal.intent(step.record(), target="fake-lab", target_file=target.source,
                             platform="fake")  # fmt: skip
    platform.close()
    as_if_killed(journal)
    said: list[str] = []
    results = cleanup(tmp_path / ".ledgerdrill", say=said.append)
    assert [r.ok for r in results] == [True], said
    assert "left to the region outage's revert" in results[0].message
    assert results[0].entry.id == step_id
    assert not list((tmp_path / ".ledgerdrill" / "journal").glob("*.jsonl"))


def test_the_step_is_rebuilt_from_its_record_with_its_stages() -> None:
    # the record carries what cleanup needs: the point in time, not the live object
    class NoPlatform:
        kind = "fake"

        def capability(self, _protocol: object) -> object:
            return object()

    step = PointInTimeRestore(NoPlatform(), "2026-12-06T10:00:00+00:00")  # type: ignore[arg-type]
    rebuilt = runbook_from_record(NoPlatform(), step.record(), {"restored": {"server": "x"}})  # type: ignore[arg-type]
    assert isinstance(rebuilt, PointInTimeRestore)
    assert rebuilt.point_in_time == "2026-12-06T10:00:00+00:00" and rebuilt.server == "x"
