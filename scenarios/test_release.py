"""Bad release and rollback: a release that fails on posting reaches every replica, is
detected and rolled back. RTO runs from the rollout to healthy posting again."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import BadRelease
from ledgerdrill.platforms.base import Platform


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("payroll-run")
@pytest.mark.requires("ReleaseControl")
def test_bad_release(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    release = BadRelease(platform, version=str(drill.param("version", "2.0.0-bad")))
    with drill.inject(release):
        drill.wait_for_detection()
        drill.runbook(release.recovery())  # roll back to the previous release
        drill.wait_for_recovery()
        drill.observe()
