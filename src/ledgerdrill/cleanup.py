"""``ledgerdrill cleanup``: revert whatever a killed run left in the fault journal."""

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
from ledgerdrill.safety.baseline import reader
from ledgerdrill.safety.bounded import bounded
from ledgerdrill.safety.journal import FaultJournal, JournalEntry
from ledgerdrill.sandbox.procs import pid_alive
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
    """Revert every pending fault. Entries of a run whose process is still alive are
    left alone unless ``force``: that run is still reverting its own faults."""
    journal = FaultJournal(state_dir)
    results: list[CleanupResult] = []
    platforms: dict[str, Platform] = {}
    for entry in journal.pending():
        if pid_alive(entry.pid) and not force:
            msg = f"skipped {entry.describe()}: run {entry.run_id} (pid {entry.pid}) is still alive"
            say(msg)
            results.append(CleanupResult(entry, False, msg))
            continue
        try:
            platform = platforms.get(entry.target_file or "")
            if platform is None:
                if not entry.target_file:
                    raise LedgerdrillError("the journal entry names no target file")
                platform = build_platform(load_target(entry.target_file))
                platforms[entry.target_file] = platform
            say(f"reverting {entry.describe()} …")
            fault_from_record(platform, entry.record).revert()
        except Exception as exc:  # every entry gets its chance; failures stay journaled
            journal.mark(entry.id, "revert-failed", error=str(exc), path=entry.path)
            msg = f"REVERT FAILED for {entry.describe()}: {exc}"
            say(msg)
            results.append(CleanupResult(entry, False, msg))
            continue
        journal.mark(entry.id, "reverted", path=entry.path)
        results.append(CleanupResult(entry, True, f"reverted {entry.describe()}"))
        say(f"reverted {entry.describe()}")
    results += _compare_with_baselines(results, platforms, say)
    for platform in platforms.values():
        platform.close()
    return results


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
