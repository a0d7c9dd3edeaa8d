"""Network faults between the platform's parts (issue 39).

A partition between the zones of the database's HA pair: the synchronous standby's WAL
stream is cut from the primary (``sync-standby>primary``, read when it runs: an earlier
drill may have moved the primary), both servers keep running. Commits wait for a standby
that cannot answer until the HA controller degrades synchronous replication; the right
call is *not* to promote the standby (the primary is alive and serving). Recovery is the
moment writes go through again; the drill's own checks then prove the standby streams
again, synchronously, once the link is healed.
"""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import NetworkPartition
from ledgerdrill.measure.verdict import Check
from ledgerdrill.platforms.base import DatabaseControl, Platform


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("month-end-close")
@pytest.mark.requires("NetworkControl", "DatabaseControl")
def test_zone_partition_of_the_database_pair(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    fault = NetworkPartition(platform, link=str(drill.param("link", "sync-standby>primary")))
    with drill.inject(fault):
        drill.wait_for_recovery()
        drill.observe()
        if not drill.dry_run and fault.resolved:
            standby, primary = fault.resolved.split(">", 1)
            after = platform.capability(DatabaseControl).database_topology().primary
            kept = after is not None and after.name == primary
            drill.add_check(Check(
                "no-promotion-on-partition", kept,
                f"{primary} stayed primary while {standby} was cut off from it"
                if kept else
                f"{after.name if after else 'nothing'} is primary after a partition that left"
                f" {primary} serving: a promotion here risks two primaries",
            ))  # fmt: skip
