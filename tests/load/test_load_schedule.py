"""The stage that runs now: following a drill's phases, and on its own.

Definitions (``ledgerdrill.load.schedule``): a phase's stages run back to back from the
phase's start, its last stage holds until the phase changes, a phase without stages keeps
the stage before it; on its own, the stages run back to back and the load ends after the
last one.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.load.schedule import (
    PHASES,
    phase_stages_s,
    stage_in_phase,
    stage_on_its_own,
    total_s,
)


def stage(phase: str, for_s: float) -> dict[str, object]:
    return {"phase": phase, "for_s": for_s}


SURGE = [
    stage("baseline", 5),
    stage("post-recovery", 3),
    stage("post-recovery", 12),
]


def test_a_phase_runs_its_own_stages_from_its_start_and_holds_the_last():
    assert stage_in_phase(SURGE, "post-recovery", 0.0) == 1
    assert stage_in_phase(SURGE, "post-recovery", 2.99) == 1
    assert stage_in_phase(SURGE, "post-recovery", 3.0) == 2
    assert stage_in_phase(SURGE, "post-recovery", 600.0) == 2


def test_a_phase_without_stages_keeps_the_stage_before_it():
    # the reconnect storm must not run during the fault: the baseline load holds
    assert stage_in_phase(SURGE, "fault", 0.0) == 0
    assert stage_in_phase(SURGE, "recovery", 30.0) == 0
    # a long baseline holds its last stage
    assert stage_in_phase(SURGE, "baseline", 99.0) == 0


def test_on_its_own_the_stages_run_back_to_back_then_end():
    assert [stage_on_its_own(SURGE, t) for t in (0, 4.9, 5, 7.9, 8, 19.9)] == [0, 0, 1, 1, 2, 2]
    assert stage_on_its_own(SURGE, 20.0) is None
    assert total_s(SURGE) == 20.0


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="not one of baseline, fault, recovery, post-recovery"):
        stage_in_phase(SURGE, "surge", 0.0)


@st.composite
def profiles(draw: st.DrawFn) -> list[dict[str, object]]:
    """Stages in drill order, the first in baseline, lengths from 0.5 s to 30 s in quarter
    seconds (exact in binary: sums of lengths have no rounding to trip a boundary)."""
    later = sorted(draw(st.lists(st.sampled_from(PHASES), max_size=8)), key=PHASES.index)
    phases = ["baseline", *later]
    lengths = st.integers(2, 120).map(lambda quarters: quarters / 4)
    return [stage(phase, draw(lengths)) for phase in phases]


@given(profiles(), st.sampled_from(PHASES), st.floats(min_value=0, max_value=200))
def test_the_stage_following_a_drill_is_of_its_phase_or_the_one_before(stages, phase, t):
    index = stage_in_phase(stages, phase, t)
    own = [i for i, s in enumerate(stages) if s["phase"] == phase]
    if own:
        assert index in own
    else:
        assert PHASES.index(str(stages[index]["phase"])) < PHASES.index(phase)
        # and no later stage of an earlier phase is skipped
        assert all(PHASES.index(str(s["phase"])) > PHASES.index(phase) for s in stages[index + 1 :])


@given(profiles(), st.sampled_from(PHASES), st.floats(0, 100), st.floats(0, 100))
def test_within_a_phase_stages_never_go_back(stages, phase, a, b):
    early, late = sorted((a, b))
    assert stage_in_phase(stages, phase, early) <= stage_in_phase(stages, phase, late)


# moments in eighths of a second: exact, like the lengths
MOMENTS = st.integers(0, 2400).map(lambda eighths: eighths / 8)


@given(profiles(), MOMENTS)
def test_a_drill_whose_phases_last_exactly_their_stages_runs_what_the_profile_runs_alone(
    stages, run_time
):
    """The two walks are one schedule: give each phase the length of its own stages and
    the drill-following walk picks, at every moment, the stage the lone walk picks."""
    alone = stage_on_its_own(stages, run_time)
    if alone is None:
        assert run_time >= total_s(stages)
        return
    start = 0.0
    for phase in PHASES:
        length = phase_stages_s(stages, phase)
        if length and run_time < start + length:
            assert stage_in_phase(stages, phase, run_time - start) == alone
            return
        start += length
    raise AssertionError("a moment before the end belongs to some phase")  # pragma: no cover
