"""``ledgerdrill cleanup``: revert whatever a killed run left in the fault journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledgerdrill.errors import LedgerdrillError
from ledgerdrill.faults import fault_from_record  # the package registers every fault kind
from ledgerdrill.platforms.base import Platform
from ledgerdrill.platforms.registry import build_platform
from ledgerdrill.safety.journal import FaultJournal, JournalEntry
from ledgerdrill.sandbox.procs import pid_alive
from ledgerdrill.targets import load_target


@dataclass(frozen=True)
class CleanupResult:
    entry: JournalEntry
    ok: bool
    message: str


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
    for platform in platforms.values():
        platform.close()
    return results
