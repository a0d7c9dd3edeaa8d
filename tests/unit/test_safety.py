"""The journal is written before injection; Injection always reverts; the guard refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerdrill.errors import FaultError, RevertError, SafetyViolation
from ledgerdrill.faults import NodeCrash
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.fake import FakePlatform
from ledgerdrill.safety import FaultJournal, Injection, SafetyGuard
from ledgerdrill.targets import load_target
from ledgerdrill.timeline import FakeClock, Timeline


@pytest.fixture
def setup(tmp_path: Path, fake_target):  # type: ignore[no-untyped-def]
    target = load_target(fake_target(heal="null"))
    platform = FakePlatform("fake-lab", tmp_path / "state.json", target.platform.nodes)  # type: ignore[union-attr]
    journal = FaultJournal(tmp_path / "state")
    guard = SafetyGuard(target, platform)
    return target, platform, journal, guard, Timeline(FakeClock())


def test_journal_written_before_inject_and_cleared_after_revert(setup) -> None:  # type: ignore[no-untyped-def]
    _, platform, journal, guard, timeline = setup
    seen_at_inject: list[int] = []

    class Spy(NodeCrash):
        def inject(self) -> None:
            seen_at_inject.append(len(journal.pending()))
            super().inject()

    with Injection(Spy(platform, "node-b"), journal=journal, guard=guard, timeline=timeline) as inj:
        assert platform.node_state("node-b") is NodeState.STOPPED
        assert inj.t_inject is not None
        assert inj.evidence is not None
        assert [e.status for e in journal.pending()] == ["injected"]
    assert seen_at_inject == [1]
    assert platform.node_state("node-b") is NodeState.RUNNING
    assert journal.pending() == []
    assert not journal.path.exists()
    kinds = [e.kind for e in timeline.events()]
    assert kinds == ["fault.injected", "fault.verified", "fault.reverting", "fault.reverted"]
    # leaving the block ends the fault's observation before the revert acts
    assert inj.t_teardown is not None and inj.t_inject is not None
    assert inj.t_teardown.mono_ns >= inj.t_inject.mono_ns


def test_reverts_when_the_body_raises(setup) -> None:  # type: ignore[no-untyped-def]
    _, platform, journal, guard, timeline = setup
    with (
        pytest.raises(ZeroDivisionError),
        Injection(NodeCrash(platform, "node-b"), journal=journal, guard=guard, timeline=timeline),
    ):
        _ = 1 / 0
    assert platform.node_state("node-b") is NodeState.RUNNING
    assert journal.pending() == []


def test_failed_verification_reverts_and_raises(setup) -> None:  # type: ignore[no-untyped-def]
    _, platform, journal, guard, timeline = setup

    class Dud(NodeCrash):
        def inject(self) -> None:  # claims to crash, does nothing
            pass

    with pytest.raises(FaultError, match="expected stopped"):
        Injection(Dud(platform, "node-b"), journal=journal, guard=guard, timeline=timeline).start()
    assert journal.pending() == []


def test_revert_failure_is_loud_and_stays_journaled(setup) -> None:  # type: ignore[no-untyped-def]
    _, platform, journal, guard, timeline = setup

    class Stuck(NodeCrash):
        def revert(self) -> None:
            raise OSError("power controller unreachable")

    with (
        pytest.raises(RevertError, match=r"REVERT FAILED.*power controller unreachable"),
        Injection(Stuck(platform, "node-b"), journal=journal, guard=guard, timeline=timeline),
    ):
        pass
    assert [e.status for e in journal.pending()] == ["revert-failed"]


def test_guard_refuses_before_touching_anything(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target, platform, journal, _, timeline = setup
    strict = target.model_copy(
        update={
            "safety": target.safety.model_copy(
                update={"allow": target.safety.allow.model_copy(update={"nodes": ["node-a"]})}
            )
        }
    )
    guard = SafetyGuard(strict, platform)
    with pytest.raises(SafetyViolation, match=r"node node-b \(zone b\) is not allowed"):
        Injection(
            NodeCrash(platform, "node-b"), journal=journal, guard=guard, timeline=timeline
        ).start()
    assert platform.history() == []
    assert journal.entries() == []


def test_blast_radius_and_production_confirmation(setup) -> None:  # type: ignore[no-untyped-def]
    target, platform, *_ = setup
    prod = target.model_copy(update={"environment": "production"})
    problems = SafetyGuard(prod, platform).problems(NodeCrash(platform, "node-b"))
    assert any("--confirm-production=fake-lab" in p for p in problems)
    assert (
        SafetyGuard(prod, platform, confirm_production="fake-lab").problems(
            NodeCrash(platform, "node-b")
        )
        == []
    )
    tight = target.model_copy(
        update={
            "safety": target.safety.model_copy(
                update={
                    "blast_radius": target.safety.blast_radius.model_copy(
                        update={"max_node_share": 0.2}
                    )
                }
            )
        }
    )
    problems = SafetyGuard(tight, platform).problems(NodeCrash(platform, "node-b"))
    assert problems == ["1 of 3 nodes (33%) > safety.blast_radius.max_node_share 20%"]


def test_region_outage_is_capped_by_regions_not_zones(setup) -> None:  # type: ignore[no-untyped-def]
    from ledgerdrill.faults import RegionOutage

    target, platform, *_ = setup
    allow = target.safety.allow.model_copy(update={"regions": ["primary"]})
    radius = target.safety.blast_radius.model_copy(update={"max_regions": 1})
    ok = target.model_copy(
        update={"safety": target.safety.model_copy(update={"allow": allow, "blast_radius": radius})}
    )
    assert SafetyGuard(ok, platform).problems(RegionOutage(platform, "primary")) == []
    none = target.model_copy(update={"safety": target.safety.model_copy(update={"allow": allow})})
    assert SafetyGuard(none, platform).problems(RegionOutage(platform, "primary")) == [
        "1 regions > safety.blast_radius.max_regions 0"
    ]
