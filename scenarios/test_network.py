"""Network faults between the platform's parts (issue 39).

A slow link from the ERP to its database and a regional outage while the DR link is cut
(below), and a partition between the zones of the database's HA pair: the synchronous standby's WAL
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
from ledgerdrill.faults import NetworkLatency, NetworkPartition, RegionOutage
from ledgerdrill.measure.verdict import Check
from ledgerdrill.platforms.base import DatabaseControl, Platform
from ledgerdrill.runbook import RegionFailover


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


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("month-end-close")
@pytest.mark.requires("NetworkControl", "DatabaseControl")
def test_slow_link_from_the_erp_to_the_database(drill: Drill, platform: Platform) -> None:
    """The ERP's link to the database primary slows down (``latency_ms`` each way, default
    5: a congested path between the application's zone and the database's). Nothing fails
    over and nothing should fail; month-end posting gets slower by every statement's round
    trip. Judged by what users were served: the tier's ``p95_during_fault`` and error rate;
    the probes say whether anything stopped (at 10 ms each way the probe's three-call
    posting passes its 1 s timeout now and then: a relapse, and a FAIL)."""
    drill.steady_state()
    fault = NetworkLatency(
        platform, link=str(drill.param("link", "erp>primary")),
        latency_ms=float(drill.param("latency_ms", 5)),
    )  # fmt: skip
    with drill.inject(fault):
        drill.wait_for_recovery()
        # the degradation lasts until reverted: users live through it for this long
        drill.observe(float(drill.param("hold_s", 15)))


@pytest.mark.tier("integrations")
@pytest.mark.loadprofile("post-recovery-surge")
@pytest.mark.requires("RegionControl", "NetworkControl", "DatabaseControl")
def test_region_outage_while_the_dr_link_is_cut(drill: Drill, platform: Platform) -> None:
    """The DR link is cut first (``async-replica>primary``: the DR replica stops receiving;
    nothing users see fails) for ``partition_s`` (default 5); then the primary region is
    lost and the DR runbook promotes what the replica has. The cut is a precondition, the
    outage is the fault: RTO is the outage's, and the RPO is about the cut's length --
    the canary and the database witness say how much was lost, the tier (integrations,
    RPO 5 m) whether that is acceptable."""
    drill.steady_state()
    cut = NetworkPartition(platform, link=str(drill.param("link", "async-replica>primary")))
    with drill.inject(cut, precondition=True):
        if not drill.dry_run:
            drill.timeline.clock.sleep(float(drill.param("partition_s", 5)))
        with drill.inject(RegionOutage(platform, region=str(drill.param("region", "primary")))):
            drill.wait_for_detection()
            drill.runbook(RegionFailover(platform, region=str(drill.param("dr_region", "dr"))))
            drill.wait_for_recovery()
            drill.observe()
