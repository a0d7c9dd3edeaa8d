"""The ledger canary against the ground truth (issue 4): what it calls lost must be
exactly the acknowledged references missing from the database that survived, counted
independently with SQL; and a crash covered by the synchronous standby loses nothing.

Runs on the session's sandbox and leaves it in its original shape (the old primary
rejoined, the primary region failed back).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ledgerdrill.measure.loss import WriteOutcome
from ledgerdrill.probes.canary import LedgerCanary, measure_canary
from ledgerdrill.probes.odoo_rpc import OdooTarget
from ledgerdrill.sandbox.postgres import PgCluster
from ledgerdrill.sandbox.postgres.credentials import SUPERUSER
from ledgerdrill.sandbox.procs import wait_until
from ledgerdrill.timeline import SystemClock, Timeline


def canary_for(sandbox: Any, run_id: str) -> LedgerCanary:
    s = sandbox.status
    target = OdooTarget(s["entry_url"], s["database"], s["login"], s["password"], s["ca_bundle"])
    return LedgerCanary(target, rate_hz=10, timeout_s=2.0, run_id=run_id)


def refs_in(dsn: str, prefix: str) -> set[str]:
    """Posted canary references, read straight from a database with SQL."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT ref FROM account_move WHERE state = 'posted' AND ref LIKE %s",
            (prefix + "%",),
        ).fetchall()
    return {str(r[0]) for r in rows}


def wait_for_writes(canary: LedgerCanary, after: int, timeout_s: float = 60) -> None:
    """Until the canary has acknowledged writes again after its ``after``-th write."""
    wait_until(
        lambda: any(w.outcome is WriteOutcome.OK for w in canary.writes[after:][-5:]),
        timeout_s=timeout_s,
        what="the canary's writes to be acknowledged again",
        interval_s=0.2,
    )


def test_synchronous_standby_loses_nothing_when_the_primary_crashes(sandbox: Any) -> None:
    platform = sandbox.platform
    primary = platform.database_topology().primary
    assert primary is not None
    timeline = Timeline(SystemClock())
    canary = canary_for(sandbox, f"sync-{time.time_ns()}").start(timeline)
    try:
        time.sleep(1.5)
        t_inject = timeline.clock.now()
        platform.crash_node(primary.node)
        wait_for_writes(canary, len(canary.writes))
        time.sleep(1.0)
    finally:
        canary.stop()
    loss, invariants = measure_canary(canary, t_inject)
    platform.restore_node(primary.node)
    platform.rejoin(primary.name)
    print(f"\n[truth] sync standby: {loss.ok} acknowledged, {len(loss.lost)} lost, "
          f"{len(loss.recovered)} unknown-but-present")  # fmt: skip
    assert loss.ok > 10
    assert loss.lost == () and loss.duplicates == () and loss.rpo_s == 0
    assert invariants.ok, invariants.problems()
    roles = {m.name: m.role for m in platform.database_topology().members}
    assert roles[primary.name] in {"sync-standby", "async-replica"}, roles


def test_async_replica_promotion_loses_exactly_what_sql_says(sandbox: Any) -> None:
    platform = sandbox.platform
    cluster = PgCluster(sandbox.state_dir)
    timeline = Timeline(SystemClock())
    canary = canary_for(sandbox, f"async-{time.time_ns()}").start(timeline)
    try:
        time.sleep(1.0)
        platform.freeze_replication("dr-db")  # dr-db stops receiving: from now it lags
        time.sleep(2.0)  # acknowledged writes the dr region will never see
        t_inject = timeline.clock.now()
        platform.region_outage("primary")
        platform.fail_over_to("dr")
        wait_for_writes(canary, len(canary.writes))
        time.sleep(1.0)
    finally:
        canary.stop()
    loss, invariants = measure_canary(canary, t_inject)
    # the ground truth: acknowledged references that the promoted database lacks
    present = refs_in(cluster.server_dsn("dr-db", SUPERUSER, dbname="ledgerdrill"), canary.prefix)
    acknowledged = {w.ref for w in canary.writes if w.outcome is WriteOutcome.OK}
    platform.restore_region("primary")  # fail back: the original shape again
    print(f"\n[truth] async promotion: {len(acknowledged)} acknowledged, canary lost "
          f"{len(loss.lost)}, SQL missing {len(acknowledged - present)}, RPO {loss.rpo_s:.2f}s")  # fmt: skip
    assert acknowledged - present, "the freeze should have made the dr replica lose writes"
    assert set(loss.lost) == acknowledged - present
    assert loss.rpo_s > 1.0  # about the two seconds the replica lagged
    assert loss.duplicates == ()
    assert invariants.ok, invariants.problems()
    roles = {m.name: m.role for m in platform.database_topology().members}
    assert roles == {"db-a": "primary", "db-b": "sync-standby", "dr-db": "async-replica"}, roles
