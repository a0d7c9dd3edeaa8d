"""An interrupt between writing a journal entry and its owner knowing of it would leave
an entry nobody finishes ("1 journal entries still pending" after a Ctrl-C, seen once in
a fresh-clone CI run: the interrupt trials signal right when a runbook step's intent
appears). A real SIGINT is sent to this process at that very moment, right after the
intent line is on disk; the owner must still learn of the entry, then the interrupt
comes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.faults import NodeCrash
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.fake import FakePlatform
from ledgerdrill.safety import FaultJournal, Injection, SafetyGuard
from ledgerdrill.safety.signals import install_termination_handler
from ledgerdrill.targets import load_target
from ledgerdrill.timeline import FakeClock, Timeline


def test_a_ctrl_c_as_the_intent_is_written_reaches_the_owner_after_it_knows_the_entry(
    tmp_path: Path, fake_target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = load_target(fake_target(heal="null"))
    platform = FakePlatform("fake-lab", tmp_path / "state.json", target.platform.nodes)  # type: ignore[union-attr]
    journal = FaultJournal(tmp_path / "state")
    written = journal._append

    def append_then_interrupted(line: dict[str, Any]) -> None:
        written(line)
        if line.get("op") == "intent":
            os.kill(os.getpid(), signal.SIGINT)  # delivered before intent() returns

    monkeypatch.setattr(journal, "_append", append_then_interrupted)
    known: list[str | None] = []
    restore = install_termination_handler()
    try:
        injection = Injection(
            NodeCrash(platform, "node-b"), journal=journal, guard=SafetyGuard(target, platform),
            timeline=Timeline(FakeClock()), on_journaled=lambda i: known.append(i.entry_id),
        )  # fmt: skip
        with pytest.raises(KeyboardInterrupt), injection:
            pytest.fail("the body must not run")
    finally:
        restore()
    assert known and known[0] is not None, "the owner never learnt of the entry it wrote"
    assert injection.entry_id == known[0]
    # the interrupt came before the fault acted; the one pending entry is the one the
    # owner knows (the drill's cleanup marks it), never one it cannot name
    assert platform.node_state("node-b") is NodeState.RUNNING
    assert [e.id for e in journal.pending()] == [known[0]]
