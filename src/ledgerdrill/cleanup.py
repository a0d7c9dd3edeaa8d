"""``ledgerdrill cleanup``: finish whatever a killed run left in the fault journal --
its runbook steps and its faults -- and read the platform back against its baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.faults import fault_from_record  # the package registers every fault kind
from ledgerdrill.platforms.base import Platform
from ledgerdrill.platforms.registry import build_platform
from ledgerdrill.platforms.shape import PlatformShape, await_baseline
from ledgerdrill.processes import pid_alive
from ledgerdrill.runbook import runbook_from_record  # registers every runbook step kind
from ledgerdrill.safety.baseline import reader
from ledgerdrill.safety.bounded import bounded
from ledgerdrill.safety.journal import FaultJournal, JournalEntry
from ledgerdrill.targets import load_target


@dataclass(frozen=True)
class CleanupResult:
    entry: JournalEntry
    ok: bool
    message: str
    # revert: one journal entry undone; baseline: the platform read back against its
    # shape before the drill, after every revert (issue 29: "reverted" is not enough)
    kind: Literal["revert", "baseline"] = "revert"


def pending_entries(state_dir: Path) -> list[JournalEntry]:
    return FaultJournal(state_dir).pending()


def cleanup(
    state_dir: Path, *, force: bool = False, say: Callable[[str], None] = print
) -> list[CleanupResult]:
    """Finish what killed runs left in the journal, then read each platform back.

    Entries of a run whose process is still alive are left alone unless ``force``: that
    run is still reverting its own faults. Runbook steps go first, newest first: each
    is rebuilt with the stages its run journaled as done and finished from there
    (``RunbookAction.finish_after_interrupt``: a stage done is never repeated -- no
    second restore) or left, as the step says, to its fault's revert. Then the faults:
    one that a completed runbook step recovered from (a restore, a rollback) is done
    already and is not reverted a second way; the others are reverted."""
    journal = FaultJournal(state_dir)
    results: list[CleanupResult] = []
    platforms: dict[str, Platform] = {}
    pending: list[JournalEntry] = []
    for entry in journal.pending():
        if pid_alive(entry.pid) and not force:
            msg = f"skipped {entry.describe()}: run {entry.run_id} (pid {entry.pid}) is still alive"
            say(msg)
            results.append(CleanupResult(entry, False, msg))
        else:
            pending.append(entry)
    for entry in reversed([e for e in pending if e.is_runbook]):
        results.append(_finish_step(journal, entry, platforms, say))
    # read after the steps: a step finished just now recovered its fault too
    recovered = {e.resolves for e in journal.entries() if e.is_runbook and not e.pending}
    for entry in (e for e in pending if not e.is_runbook):
        if entry.id in recovered:
            journal.mark(entry.id, "reverted", path=entry.path)
            msg = f"{entry.describe()}: recovered by its runbook step, nothing to revert"
            say(msg)
            results.append(CleanupResult(entry, True, msg))
            continue
        results.append(_revert_fault(journal, entry, platforms, say))
    results += _compare_with_baselines(results, platforms, say)
    for platform in platforms.values():
        platform.close()
    return results


def _platform_for(entry: JournalEntry, platforms: dict[str, Platform]) -> Platform:
    platform = platforms.get(entry.target_file or "")
    if platform is None:
        if not entry.target_file:
            raise LedgerdrillError("the journal entry names no target file")
        platform = build_platform(load_target(entry.target_file))
        platforms[entry.target_file] = platform
    return platform


def _finish_step(
    journal: FaultJournal,
    entry: JournalEntry,
    platforms: dict[str, Platform],
    say: Callable[[str], None],
) -> CleanupResult:
    try:
        platform = _platform_for(entry, platforms)
        step = runbook_from_record(platform, entry.record, entry.stages)
        # a stage completed now is journaled too: a cleanup killed in turn resumes here
        step.recorder = lambda name, data: journal.stage(entry.id, name, data, path=entry.path)
        done = ", ".join(entry.stages) or "none"
        say(f"finishing {entry.describe()} (stages done: {done}) …")
        limit = load_target(str(entry.target_file)).safety.fault_call_timeout
        said = bounded(step.finish_after_interrupt, limit, f"finishing {step.kind}")
    except Exception as exc:  # every entry gets its chance; failures stay journaled
        return _failed(journal, entry, exc, say)
    journal.mark(entry.id, "done", path=entry.path)
    msg = f"runbook step {entry.kind}: {said}"
    say(msg)
    return CleanupResult(entry, True, msg)


def _revert_fault(
    journal: FaultJournal,
    entry: JournalEntry,
    platforms: dict[str, Platform],
    say: Callable[[str], None],
) -> CleanupResult:
    try:
        platform = _platform_for(entry, platforms)
        say(f"reverting {entry.describe()} …")
        fault_from_record(platform, entry.record).revert()
    except Exception as exc:  # every entry gets its chance; failures stay journaled
        return _failed(journal, entry, exc, say)
    journal.mark(entry.id, "reverted", path=entry.path)
    say(f"reverted {entry.describe()}")
    return CleanupResult(entry, True, f"reverted {entry.describe()}")


def _failed(
    journal: FaultJournal, entry: JournalEntry, exc: Exception, say: Callable[[str], None]
) -> CleanupResult:
    journal.mark(entry.id, "revert-failed", error=str(exc), path=entry.path)
    what = "FINISHING FAILED" if entry.is_runbook else "REVERT FAILED"
    msg = f"{what} for {entry.describe()}: {exc}"
    say(msg)
    return CleanupResult(entry, False, msg)


def _compare_with_baselines(
    results: list[CleanupResult], platforms: dict[str, Platform], say: Callable[[str], None]
) -> list[CleanupResult]:
    """After the reverts: let each platform settle, then read it back against the shape
    its run recorded before the drill (the newest such entry per target). Waits, bounded
    by the target's ``safety.baseline_timeout``, for what the platform heals itself."""
    newest: dict[str, JournalEntry] = {}
    for result in results:
        entry = result.entry
        if entry.baseline is not None and entry.target_file in platforms:
            newest[entry.target_file or ""] = entry
    checked: list[CleanupResult] = []
    for target_file, entry in newest.items():
        platform = platforms[target_file]
        target = load_target(target_file)
        try:
            for done in bounded(platform.settle, target.safety.fault_call_timeout, "settling"):
                say(f"settled: {done}")
        except Exception as exc:  # the comparison says what is left
            say(f"settling the platform failed: {exc}")
        assert entry.baseline is not None
        say(f"comparing {entry.target} with how it read before the drill …")
        check = await_baseline(
            reader(platform),
            PlatformShape.from_json(entry.baseline),
            timeout_s=target.safety.baseline_timeout,
        )
        if check.restored:
            say(f"{entry.target}: {check.text()}")
        else:
            say(f"{entry.target}: {check.text()}")
            for line in check.differences:
                say(f"  - {line}")
        checked.append(CleanupResult(entry, check.restored, check.text(), kind="baseline"))
    return checked
