"""Zone outage: every node of one zone at once (an ERP replica and the database primary).
The HA controller must promote the synchronous standby: measured RPO must be 0."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import ZoneOutage
from ledgerdrill.platforms.base import Platform


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("month-end-close")
@pytest.mark.requires("ZoneControl", "NodeControl")
@pytest.mark.loadprofile("month-end-close")
def test_zone_outage(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    with drill.inject(ZoneOutage(platform, zone=str(drill.param("zone", "a")))):
        drill.wait_for_recovery()
        drill.observe()
