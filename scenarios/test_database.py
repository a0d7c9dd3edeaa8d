"""Database faults: the primary alone fails (crash, or a planned switchover) and the old
primary rejoins as a standby; a bad change corrupts the ledger and a point-in-time
restore into a new server recovers it."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import DatabaseCorruption, DatabaseFailover
from ledgerdrill.platforms.base import Platform

BAD_CHANGE = (
    "DELETE FROM account_move WHERE state = 'posted' AND id IN "
    "(SELECT id FROM account_move WHERE state = 'posted' ORDER BY id DESC LIMIT 5)"
)


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("month-end-close")
@pytest.mark.requires("DatabaseControl")
@pytest.mark.parametrize("mode", ["crash", "switchover"])
def test_database_failover(drill: Drill, platform: Platform, mode: str) -> None:
    drill.steady_state()
    fault = DatabaseFailover(platform, mode=mode)
    with drill.inject(fault):
        drill.wait_for_recovery()
        drill.observe()
    # the old primary must be back as a streaming standby: the drill's
    # platform-restored check compares the cluster with its shape before the fault


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("month-end-close")
@pytest.mark.requires("DatabaseControl")
def test_database_corruption_and_point_in_time_restore(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    fault = DatabaseCorruption(
        platform,
        sql=str(drill.param("sql", BAD_CHANGE)),
        description=str(drill.param("description", "a month-end job deletes posted entries")),
    )
    with drill.inject(fault):
        drill.wait_for_detection()
        # restore to just before the bad change into a new server, switch the ERP to it
        drill.runbook(fault.recovery())
        drill.wait_for_recovery()
        drill.observe()
