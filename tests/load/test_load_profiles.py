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


def test_scaling_keeps_ramps_possible():
    profile = load_profile(PROFILES / "month-end-close.yaml", scale=3)
    assert profile.peak_users == 36
    assert load_profile(PROFILES / "steady.yaml", scale=0.1).peak_users == 1
    with pytest.raises(ConfigError, match="load scale"):
        load_profile(PROFILES / "steady.yaml", scale=0)


BAD = {
    "typo": (
        "name: x\nmix: {acountant: 1}\nstages: [{until: 5s, users: 2, spawn_rate: 1}]",
        "mix.acountant: unknown field (did you mean 'accountant'?",
    ),
    "slow-ramp": (
        "name: x\nmix: {accountant: 1}\nstages: [{until: 5s, users: 20, spawn_rate: 1}]",
        "stages.0.spawn_rate: going from 0 to 20 users at 1/s takes 20s but the stage lasts 5s",
    ),
    "not-increasing": (
        "name: x\nmix: {accountant: 1}\nstages:\n"
        " - {until: 10s, users: 2, spawn_rate: 1}\n - {until: 5s, users: 2, spawn_rate: 1}",
        "stages.1.until: 5s must be later than the previous stage's 10s",
    ),
    "bad-duration": (
        "name: x\nmix: {accountant: 1}\nstages: [{until: soon, users: 2, spawn_rate: 1}]",
        "stages.0.until: 'soon' is not a duration",
    ),
    "no-weight": (
        "name: x\nmix: {accountant: 0}\nstages: [{until: 5s, users: 2, spawn_rate: 1}]",
        "mix: a mix needs at least one positive weight",
    ),
    "negative-users": (
        "name: x\nmix: {accountant: 1}\nstages: [{until: 5s, users: -1, spawn_rate: 1}]",
        "stages.0.users: Input should be greater than or equal to 0",
    ),
    "no-stages": ("name: x\nmix: {accountant: 1}\nstages: []", "stages: List should have at least"),
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
