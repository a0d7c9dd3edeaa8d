"""Safety: allowlists and blast radius, the fault journal, Injection, signal handling."""

from ledgerdrill.safety.guard import SafetyGuard
from ledgerdrill.safety.injection import Injection
from ledgerdrill.safety.journal import DEFAULT_STATE_DIR, FaultJournal, JournalEntry
from ledgerdrill.safety.signals import Terminated, deferred_signals, install_termination_handler

__all__ = [
    "DEFAULT_STATE_DIR",
    "FaultJournal",
    "Injection",
    "JournalEntry",
    "SafetyGuard",
    "Terminated",
    "deferred_signals",
    "install_termination_handler",
]
