"""Regional outage and DR failover: everything in the primary region is lost; the DR
runbook promotes the dr database, points the dr replicas at it and moves traffic.
Duplicate postings after the replay are a failure."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import RegionOutage
from ledgerdrill.platforms.base import Platform
from ledgerdrill.runbook import RegionFailover


@pytest.mark.tier("integrations")
@pytest.mark.requires("RegionControl")
@pytest.mark.loadprofile("post-recovery-surge")
def test_region_outage(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    region = str(drill.param("region", "primary"))
    dr_region = str(drill.param("dr_region", "dr"))
    with drill.inject(RegionOutage(platform, region=region)):
        drill.wait_for_detection()
        drill.runbook(RegionFailover(platform, region=dr_region))
        drill.wait_for_recovery()
        drill.observe()
