"""The database's network through links (issue 39, step 1): a real cluster whose WAL
streams run through ``sandbox/links.py``, each link's effect seen by an independent
witness -- PostgreSQL's own view of its replication, and the commit latency a client
measures -- and each revert proven by reading the same witness back."""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledgerdrill.platforms.sandbox.links import Links, link_name
from ledgerdrill.platforms.sandbox.netlink import LinkShape
from ledgerdrill.platforms.sandbox.postgres import PgCluster
from ledgerdrill.platforms.sandbox.postgres.server import application_name

sys.path.insert(0, str(Path(__file__).parent))
from pgtools import healthy, state_folder, take_down, wait_for


@pytest.fixture(scope="module")
def linked() -> Iterator[tuple[PgCluster, Links]]:
    folder = state_folder("ldlinks-")
    links = Links(folder)
    cluster = PgCluster(folder)
    cluster.stream_route = lambda member, server: links.port(member, server.name, server.port)
    cluster.up()
    try:
        wait_for(lambda: healthy(cluster), 30, "the linked cluster to stream")
        yield cluster, links
    finally:
        try:
            take_down(cluster)
        finally:
            links.stop()
            shutil.rmtree(folder, ignore_errors=True)


def commit_ms(cluster: PgCluster, count: int = 15) -> float:
    """Median time to commit one row on the primary (synchronous: the standby confirms)."""
    dsn = cluster.server_dsn(cluster.primary_name, "postgres", dbname="postgres")
    took = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS link_probe (id bigserial, at timestamptz)")
        for _ in range(count):
            start = time.perf_counter()
            conn.execute("INSERT INTO link_probe (at) VALUES (now())")
            took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took)


def test_every_wal_stream_runs_through_its_link(linked: tuple[PgCluster, Links]) -> None:
    cluster, links = linked
    primary = cluster.primary_name
    for member in (cluster.partner_of(primary), cluster.dr_member):
        assert member is not None
        name = link_name(member, primary)
        port = links.get(name).port
        # PostgreSQL's own account: the WAL receiver's sender is the link, not the server
        rows = cluster.server(member).query("SELECT status, sender_port FROM pg_stat_wal_receiver")
        assert tuple(rows[0]) == ("streaming", port), (member, rows, port)
        assert links.get(name).open_connections >= 1
        assert cluster.follows_primary(member)
    assert (cluster.state_dir / "links.json").is_file()


def test_latency_on_the_zone_link_slows_every_synchronous_commit(
    linked: tuple[PgCluster, Links],
) -> None:
    cluster, links = linked
    zone_link = links.get(link_name(str(cluster.partner_of(cluster.primary_name)),
                                    cluster.primary_name))  # fmt: skip
    before = commit_ms(cluster)
    zone_link.set_shape(LinkShape(latency_ms=40))
    try:
        slowed = commit_ms(cluster)
    finally:
        zone_link.heal()
    after = commit_ms(cluster)
    print(f"\n[links] synchronous commit: {before:.1f} ms, {slowed:.1f} ms with 40 ms each way"
          f" on the zone link, {after:.1f} ms healed")  # fmt: skip
    # a commit waits for the standby's flush: one round trip, 80 ms, added to each
    assert slowed - before >= 70, (before, slowed)
    assert after < before + 20, (before, after)  # healed: back to what it was


def test_cutting_the_dr_link_stops_the_dr_stream_and_healing_catches_up(
    linked: tuple[PgCluster, Links],
) -> None:
    cluster, links = linked
    primary = cluster.primary
    dr_link = links.get(link_name(cluster.dr_member, cluster.primary_name))
    app = application_name(cluster.dr_member)

    def dr_behind_bytes() -> int:
        rows = primary.query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint"
            " FROM pg_stat_replication WHERE application_name = %s", [app],
        )  # fmt: skip
        return int(rows[0][0]) if rows else -1

    dr_link.set_shape(LinkShape(cut=True))
    try:
        commit_ms(cluster, count=20)  # WAL the DR replica cannot receive while cut
        time.sleep(1.0)
        assert dr_behind_bytes() != 0  # behind (or gone from pg_stat_replication: -1)
    finally:
        dr_link.heal()
    wait_for(lambda: dr_behind_bytes() == 0, 30, "the DR replica to catch up after healing")
    assert cluster.follows_primary(cluster.dr_member)
