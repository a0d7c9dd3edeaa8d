"""Recovery back to the HA shape, against real PostgreSQL servers.

One module-scoped cluster goes through, in order: an HA failover and its way back, a
regional failover with a lagging geo link (the data-loss ground truth) and the
fail-back, then a point-in-time restore adopted as the cluster's data. Each test ends
with the cluster in its original shape (db-a primary, db-b synchronous, dr-db async);
``pgtools.ClusterKeeper`` checks that before and after each test, so a test that
leaves it otherwise fails itself and the next one starts from a repaired cluster
(no test reads another's tables). Rows are counted with plain SQL on each server: this
is the truth other components (the canary) are checked against. Timings are printed
(``-s``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from pgtools import ClusterKeeper, Events, in_original_shape, kept, roles, timing, wait_for

from ledgerdrill.platforms.sandbox.nodes import NodeProcesses
from ledgerdrill.platforms.sandbox.postgres import HaController, PgCluster
from ledgerdrill.platforms.sandbox.postgres.server import PgServer, application_name
from ledgerdrill.platforms.sandbox.procs import port_open

ORIGINAL = {"db-a": "primary", "db-b": "sync-standby", "dr-db": "async-replica"}


def ids(server: PgServer, table: str) -> set[int]:
    """The ground truth: the ids the server itself holds, by SQL."""
    rows = server.query(f"SELECT id FROM {table}", dbname="ledgerdrill")
    return {int(r[0]) for r in rows}


def insert_each(dsn: str, table: str, values: range) -> None:
    """One committed (acknowledged) transaction per row."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for value in values:
            conn.execute(f"INSERT INTO {table} (id) VALUES (%s)", [value])


def caught_up(cluster: PgCluster, member: str) -> bool:
    server = cluster.server(member)
    target = str(cluster.primary.query("SELECT pg_current_wal_lsn()")[0][0])
    rows = server.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
    return bool(rows[0][0])


def replicas_caught_up(cluster: PgCluster) -> bool:
    return all(caught_up(cluster, m) for m in ORIGINAL if m != cluster.primary_name)


def node_available(state: Path) -> Callable[[str], bool]:
    def available(node: str) -> bool:
        folder = state / "nodes" / node
        return not (folder / "down").exists() and not (folder / "frozen").exists()

    return available


@pytest.fixture(scope="module")
def keeper() -> Iterator[ClusterKeeper]:
    shared = ClusterKeeper(in_original_shape, "ldpgr-")
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def cluster(keeper: ClusterKeeper, request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """The shared cluster in its original shape before the test; a test that passes
    must leave it so (see ``pgtools.ClusterKeeper``)."""
    with kept(keeper, request) as original:
        assert roles(original) == ORIGINAL
        yield original


@pytest.fixture
def ha(cluster: PgCluster) -> Iterator[tuple[HaController, Events]]:
    events = Events()
    controller = HaController(
        cluster,
        events,
        detection_window_s=1.0,
        poll_interval_s=0.1,
        node_available=node_available(cluster.state_dir),
    )
    controller.start()
    try:
        yield controller, events
    finally:
        controller.stop()
        for node in cluster.specs:  # a failed test must not leave a node "down"
            NodeProcesses(cluster.state_dir, node).restore()


# -- data-loss truth: the zone-redundant pair ---------------------------------------------------


def test_crash_of_primary_node_fails_over_to_sync_standby_losing_nothing(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    controller, events = ha
    assert in_original_shape(cluster)
    dsn = cluster.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE zone_truth (id int PRIMARY KEY)")
    insert_each(dsn, "zone_truth", range(1, 41))  # 40 acknowledged commits
    NodeProcesses(cluster.state_dir, "db-a").crash()
    wait_for(lambda: "failover-completed" in events.kinds(), 15, "the HA failover")
    _, name, _ = events.first("failover-completed")
    assert name == "db-b" and cluster.primary_name == "db-b"
    assert ids(cluster.server("db-b"), "zone_truth") == set(range(1, 41))  # RPO 0
    insert_each(dsn, "zone_truth", range(41, 46))  # written to db-b while db-a is down

    NodeProcesses(cluster.state_dir, "db-a").restore()
    # the controller rejoins the node on its own once it is available
    wait_for(lambda: "standby-rejoined" in events.kinds(), 20, "db-a to rejoin")
    started = time.monotonic()
    assert controller.switchover("db-a") == "db-a"
    timing("switchover back to db-a", time.monotonic() - started)
    wait_for(lambda: in_original_shape(cluster), 15, "the original shape")
    wait_for(lambda: replicas_caught_up(cluster), 10, "the replicas to catch up")
    for member in ORIGINAL:
        assert ids(cluster.server(member), "zone_truth") == set(range(1, 46)), member


# -- data-loss truth: the regional failover, and the fail-back -----------------------------------


def test_regional_failover_loses_exactly_the_rows_written_after_the_freeze_then_fails_back(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    controller, events = ha
    assert in_original_shape(cluster)
    state = cluster.state_dir
    dsn = cluster.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE geo_truth (id int PRIMARY KEY)")
    insert_each(dsn, "geo_truth", range(1, 101))  # before the freeze: must survive
    cluster.freeze_walsender("dr-db")  # waits until dr-db has all of it, then cuts
    lost = range(101, 126)
    insert_each(dsn, "geo_truth", lost)  # acknowledged (db-b has them), dr-db does not
    assert ids(cluster.server("db-b"), "geo_truth") == set(range(1, 126))
    # the primary region is lost. The standby's node goes first: were the primary's
    # first, the controller could promote db-b before its node dies too (a node crash
    # takes a moment), repoint dr-db at it, and dr-db would receive the rows after all
    for node in reversed(cluster.ha_pair):
        NodeProcesses(state, node).crash()

    started = time.monotonic()
    assert controller.regional_failover() == "dr-db"
    timing("promote_dr (regional failover)", time.monotonic() - started)
    dr = cluster.server("dr-db")
    survived = ids(dr, "geo_truth")
    assert survived == set(range(1, 101))  # exactly the rows written after the freeze are lost
    assert len(set(range(1, 126)) - survived) == len(lost)
    insert_each(cluster.dr_dsn(), "geo_truth", range(1001, 1011))  # the DR region's writes
    assert cluster.regional_failover_active

    # the region's nodes come back: the controller stands aside (no promotion, no
    # automatic rejoin), and a restart of the cluster does not start the fenced members
    for node in cluster.ha_pair:
        NodeProcesses(state, node).restore()
    time.sleep(2 * controller.detection_window_s)
    PgCluster(state).up()  # as a restarted sandbox daemon would
    assert cluster.server("db-a").state() == "stopped"
    assert cluster.server("db-b").state() == "stopped"
    assert cluster.primary_name == "dr-db"
    kinds = events.kinds()
    during = kinds[kinds.index("region-failed-over") :]
    assert "ha-suspended" in during
    for kind in ("failover-started", "standby-rejoined", "sync-replication-restored"):
        assert kind not in during, kinds

    started = time.monotonic()
    assert controller.fail_back() == "db-a"
    timing(
        "fail_back (rebuild db-a/db-b from dr-db, switchover to db-a)", time.monotonic() - started
    )
    print(f"\n[fail-back] {cluster.last_fail_back} ({cluster.last_rewind_error})")
    assert set(cluster.last_fail_back) == {"db-a", "db-b"}
    assert not cluster.regional_failover_active
    wait_for(lambda: in_original_shape(cluster), 15, "the original shape")
    timelines = {m.name: m.timeline for m in cluster.topology().members}
    assert len(set(timelines.values())) == 1, timelines
    insert_each(cluster.dsn(), "geo_truth", range(2001, 2006))
    expected = set(range(1, 101)) | set(range(1001, 1011)) | set(range(2001, 2006))
    wait_for(lambda: replicas_caught_up(cluster), 10, "the replicas to catch up")
    for member in ORIGINAL:
        assert ids(cluster.server(member), "geo_truth") == expected, member
    wait_for(lambda: "ha-resumed" in events.kinds(), 5, "the controller to resume")
    kinds = events.kinds()
    assert "failover-started" not in kinds[kinds.index("region-failed-over") :], kinds
    assert "standby-promoted" not in kinds, kinds  # db-b was never promoted
    assert "failed-back" in kinds


# -- point-in-time restore adopted back into the HA cluster -------------------------------------


def test_adopt_restored_returns_to_the_ha_shape_and_a_later_restore_still_works(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    controller, events = ha
    assert in_original_shape(cluster)
    dsn = cluster.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int PRIMARY KEY)")
        conn.execute("INSERT INTO invoices SELECT generate_series(1, 100)")
        time.sleep(0.2)
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        good_at: datetime = row[0]
        time.sleep(0.2)
        conn.execute("DELETE FROM invoices")  # the bad change
    restored = cluster.restore_to_point_in_time(good_at)
    restored_tli = restored.timeline_id()
    # the cluster moves on meanwhile: its next timeline takes the same id as the
    # restored server's (which the archive never heard of)
    controller.switchover("db-b")
    assert cluster.primary.timeline_id() == restored_tli
    insert_each(cluster.server_dsn(restored.name), "invoices", range(1001, 1008))

    started = time.monotonic()
    assert controller.adopt_restored(restored.name) == "db-a"
    timing("adopt_restored", time.monotonic() - started)
    wait_for(lambda: in_original_shape(cluster), 15, "the original shape")
    expected = set(range(1, 101)) | set(range(1001, 1008))
    wait_for(lambda: replicas_caught_up(cluster), 10, "the replicas to catch up")
    for member in ORIGINAL:
        assert ids(cluster.server(member), "invoices") == expected, member
    # a timeline of its own, above anything in use, with its history in the archive
    timeline = cluster.primary.timeline_id()
    assert timeline > restored_tli
    assert {m.timeline for m in cluster.topology().members} == {timeline}
    history = (cluster.wal_dir / f"{timeline:08X}.history").read_text()
    assert f"\n{restored_tli}\t" in "\n" + history  # it descends from the restored server
    assert cluster.base_backups()[-1].timeline == timeline
    # the restored server is gone
    assert restored.name not in cluster.restored
    assert not restored.alive() and not port_open(restored.port)
    assert not restored.data_dir.exists()
    assert "failover-started" not in events.kinds()
    assert "restored-server-adopted" in events.kinds()

    # archiving works on the new timeline, and a later point-in-time restore too
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO invoices VALUES (3000)")
        time.sleep(0.2)
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        later: datetime = row[0]
        time.sleep(0.2)
        conn.execute("DELETE FROM invoices")
    again = cluster.restore_to_point_in_time(later)
    try:
        assert ids(again, "invoices") == expected | {3000}
        assert again.timeline_id() > timeline
    finally:
        cluster.drop_restored(again.name)
    failed = cluster.primary.query("SELECT failed_count FROM pg_stat_archiver")
    assert failed == [(0,)]
    assert application_name("db-b") in cluster.primary.synchronous_standby_names()
