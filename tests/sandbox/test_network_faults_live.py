"""The network faults on the running sandbox (issue 39): each took effect by evidence
that is not the link's word -- PostgreSQL's answers timed by a client through the link,
and PostgreSQL's own view of its replication -- and each revert reads back as found."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import psycopg.conninfo

from ledgerdrill.faults import NetworkLatency, NetworkLoss, NetworkPartition
from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.platforms.sandbox.postgres.credentials import SUPERUSER
from ledgerdrill.platforms.sandbox.postgres.server import application_name
from ledgerdrill.platforms.sandbox.procs import wait_until


def primary_and_standby(sandbox: Any) -> tuple[str, str]:
    topology = sandbox.platform.database_topology()
    standby = next(m.name for m in topology.members if m.role == "sync-standby")
    return topology.primary.name, standby


def query_ms_through(sandbox: Any, link: str, member: str) -> float:
    """``SELECT 1`` on a connection through ``link``: the median of five, in ms."""
    port = next(r["port"] for r in sandbox.refresh()["postgres"]["links"] if r["name"] == link)
    dsn = psycopg.conninfo.make_conninfo(
        PgCluster(sandbox.state_dir).server_dsn(member, SUPERUSER, dbname="postgres"), port=port
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        times = []
        for _ in range(5):
            began = time.perf_counter()
            conn.execute("SELECT 1").fetchall()
            times.append((time.perf_counter() - began) * 1000)
    return sorted(times)[2]


def test_latency_on_the_erps_link_is_what_a_query_through_it_takes(sandbox: Any) -> None:
    platform = sandbox.platform
    primary, _ = primary_and_standby(sandbox)
    link = f"erp>{primary}"
    before = platform.link_state(link)
    clean_ms = query_ms_through(sandbox, link, primary)
    fault = NetworkLatency(platform, link, latency_ms=30)
    fault.prepare()
    fault.inject()
    try:
        evidence = fault.verify()
        slowed_ms = query_ms_through(sandbox, link, primary)
    finally:
        fault.revert()
    print(f"\n[network] SELECT 1 through {link}: {clean_ms:.1f} ms, {slowed_ms:.1f} ms with 30 ms"
          f" each way; the fault's own evidence: {evidence.summary}")  # fmt: skip
    assert slowed_ms - clean_ms >= 55  # one round trip: 60 ms more
    assert platform.link_state(link) == before
    assert query_ms_through(sandbox, link, primary) < clean_ms + 20


def test_loss_on_a_link_shows_as_retransmissions_and_goes_with_the_revert(sandbox: Any) -> None:
    platform = sandbox.platform
    primary, _ = primary_and_standby(sandbox)
    link = f"erp>{primary}"
    fault = NetworkLoss(platform, link, loss_percent=25)
    fault.prepare()
    fault.inject()
    try:
        evidence = fault.verify()
    finally:
        fault.revert()
    assert evidence.details["late"] >= 1
    after = platform.measure_link(link, 20)
    assert after.refused == 0 and max(after.round_trips_ms) < 100, after


def test_a_partition_of_the_sync_standby_shows_in_pg_stat_replication(sandbox: Any) -> None:
    platform = sandbox.platform
    primary, standby = primary_and_standby(sandbox)
    cluster = PgCluster(sandbox.state_dir)
    app = application_name(standby)

    def written() -> str:
        cluster.server(primary).query("SELECT pg_switch_wal()")  # WAL the standby must get
        return str(cluster.server(primary).query("SELECT pg_current_wal_lsn()")[0][0])

    def flushed_past(lsn: str) -> bool:
        """The primary's view: the standby streams and has flushed ``lsn``."""
        rows = cluster.server(primary).query(
            "SELECT state, flush_lsn >= %s::pg_lsn FROM pg_stat_replication"
            " WHERE application_name = %s", [lsn, app],
        )  # fmt: skip
        return bool(rows) and rows[0][0] == "streaming" and bool(rows[0][1])

    link = f"{standby}>{primary}"
    fault = NetworkPartition(platform, link)
    fault.prepare()
    fault.inject()
    try:
        assert "nothing gets through" in fault.verify().summary
        during = written()
        time.sleep(2.0)
        assert not flushed_past(during), f"{standby} received WAL through a cut link"
    finally:
        fault.revert()
    assert not platform.link_state(link).cut
    after = written()
    wait_until(lambda: flushed_past(after), timeout_s=60,
               what=f"{standby} to stream and catch up again")  # fmt: skip
    assert flushed_past(during)
