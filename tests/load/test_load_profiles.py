"""Load profiles: the shipped ones load; a mistake is one clear ConfigError line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerdrill.errors import ConfigError
from ledgerdrill.load.profile import find_profile, load_profile

PROFILES = Path(__file__).resolve().parents[2] / "loadprofiles"
SHIPPED = ["month-end-close", "post-recovery-surge", "payroll-run", "steady"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_and_stay_short(name):
    profile = load_profile(find_profile(name, [PROFILES]))
    assert profile.name == name
    assert 20 <= profile.duration_s <= 60
    assert 2 <= profile.peak_users <= 20
    plan = profile.plan(max_duration_s=10)
    assert plan["end_s"] == 10 and plan["stages"][0]["mix"]
    assert plan["stages"][0]["phase"] == "baseline"
    # the post-recovery surge is a surge: tens of seconds, not minutes
    assert profile.phase_s("post-recovery") <= 30


def test_a_load_that_follows_a_drill_ends_only_when_the_harness_ends_it():
    profile = load_profile(PROFILES / "steady.yaml")
    assert profile.plan()["end_s"] == 60 and profile.plan()["phase_file"] is None
    following = profile.plan(max_duration_s=300, phase_file=Path("/run/phase.json"))
    assert following["end_s"] == 300  # only the watchdog's bound, not the stages' 60 s
    assert following["phase_file"] == "/run/phase.json"


def test_the_surge_profile_runs_its_storm_only_after_the_recovery():
    profile = load_profile(PROFILES / "post-recovery-surge.yaml")
    storm = [s for s in profile.stages if s.mix is not None and s.mix.login > 0]
    assert storm and all(s.phase == "post-recovery" for s in storm)


def test_scaling_keeps_ramps_possible():
    profile = load_profile(PROFILES / "month-end-close.yaml", scale=3)
    assert profile.peak_users == 36
    assert load_profile(PROFILES / "steady.yaml", scale=0.1).peak_users == 1
    with pytest.raises(ConfigError, match="load scale"):
        load_profile(PROFILES / "steady.yaml", scale=0)


ONE = "name: x\nmix: {accountant: 1}\nstages: "
BAD = {
    "typo": (
        "name: x\nmix: {acountant: 1}\nstages: [{phase: baseline, for: 5s, users: 2, "
        "spawn_rate: 1}]",
        "mix.acountant: unknown field (did you mean 'accountant'?",
    ),
    "slow-ramp": (
        ONE + "[{phase: baseline, for: 5s, users: 20, spawn_rate: 1}]",
        "stages.0.spawn_rate: going from 0 to 20 users at 1/s takes 20s but the stage lasts 5s",
    ),
    "old-style": (
        ONE + "[{until: 5s, users: 2, spawn_rate: 1}]",
        "stages.0: 'until' (time since the load started) is no longer allowed: "
        "a stage names the drill phase it runs in and its own length, e.g. {phase: baseline,",
    ),
    "out-of-order": (
        ONE + "\n - {phase: baseline, for: 5s, users: 2, spawn_rate: 1}"
        "\n - {phase: recovery, for: 5s, users: 2, spawn_rate: 1}"
        "\n - {phase: fault, for: 5s, users: 2, spawn_rate: 1}",
        "stages.2.phase: fault after recovery; stages are listed in drill order (baseline, "
        "fault, recovery, post-recovery)",
    ),
    "no-baseline": (
        ONE + "[{phase: fault, for: 5s, users: 2, spawn_rate: 1}]",
        "stages.0.phase: fault is not allowed for the first stage (allowed: baseline)",
    ),
    "unknown-phase": (
        ONE + "[{phase: surge, for: 5s, users: 2, spawn_rate: 1}]",
        "stages.0.phase: 'surge' is not allowed (allowed: 'baseline', 'fault', 'recovery' "
        "or 'post-recovery')",
    ),
    "zero-length": (
        ONE + "[{phase: baseline, for: 0s, users: 2, spawn_rate: 1}]",
        "stages.0.for: a stage lasts more than 0s",
    ),
    "bad-duration": (
        ONE + "[{phase: baseline, for: soon, users: 2, spawn_rate: 1}]",
        "stages.0.for: 'soon' is not a duration",
    ),
    "no-weight": (
        "name: x\nmix: {accountant: 0}\nstages: [{phase: baseline, for: 5s, users: 2, "
        "spawn_rate: 1}]",
        "mix: a mix needs at least one positive weight",
    ),
    "negative-users": (
        ONE + "[{phase: baseline, for: 5s, users: -1, spawn_rate: 1}]",
        "stages.0.users: Input should be greater than or equal to 0",
    ),
    "no-stages": (ONE + "[]", "stages: List should have at least"),
    "not-a-mapping": ("- 1\n- 2", "a load profile must be a YAML mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_profile_is_one_clear_line(tmp_path, case):
    text, expected = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_profile(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert len(message.splitlines()) == 1


def test_an_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"allowed: .*month-end-close"):
        find_profile("month-end", [PROFILES])
