"""The sandbox's PostgreSQL HA cluster, with real servers (no fakes).

One cluster serves the module (it takes ~2 s to build); every test leaves it healthy
-- a primary, a synchronous standby and an asynchronous DR replica, all streaming --
though not necessarily with the same member as primary; ``pgtools.ClusterKeeper``
checks that before and after each test, so a test that breaks it fails itself and the
tests after it get a repaired cluster. Tests that break it for good (a regional
failover, a diverged replica) build their own. Measured timings are printed (run with
``-s`` to see them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import psutil
import psycopg
import pytest
from pgtools import (
    ClusterKeeper,
    Events,
    assert_down,
    healthy,
    kept,
    roles,
    server_processes,
    state_folder,
    take_down,
    timing,
    wait_for,
)

from ledgerdrill.platforms.sandbox.nodes import NodeProcesses
from ledgerdrill.platforms.sandbox.postgres import (
    HaController,
    PgCluster,
    is_unreplicated_commit_notice,
)
from ledgerdrill.platforms.sandbox.postgres.server import application_name
from ledgerdrill.platforms.sandbox.procs import port_open


def num(value: object) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def keeper() -> Iterator[ClusterKeeper]:
    shared = ClusterKeeper(healthy, "ldpg-")
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def cluster(keeper: ClusterKeeper, request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """The shared cluster, healthy (any member primary) before the test; a test that
    passes must leave it healthy (see ``pgtools.ClusterKeeper``)."""
    with kept(keeper, request) as healthy_cluster:
        yield healthy_cluster


@pytest.fixture
def ha(cluster: PgCluster) -> Iterator[tuple[HaController, Events]]:
    events = Events()
    controller = HaController(cluster, events, detection_window_s=2.0, poll_interval_s=0.1)
    controller.start()
    try:
        yield controller, events
    finally:
        controller.stop()
        assert not controller.running


# -- the cluster as built ---------------------------------------------------------------------


def test_cluster_comes_up_with_sync_standby_and_async_dr_replica(cluster: PgCluster) -> None:
    assert roles(cluster) == {
        "db-a": "primary",
        "db-b": "sync-standby",
        "dr-db": "async-replica",
    }
    rows = {r.application_name: r for r in cluster.primary.replication()}
    assert rows["db_b"].sync_state == "sync"
    assert rows["dr_db"].sync_state == "async"
    assert cluster.primary.synchronous_standby_names() == "FIRST 1 (db_b)"
    assert all(m.timeline == 1 for m in cluster.topology().members)
    assert len(cluster.base_backups()) == 1
    # every server runs as the unprivileged user when we are root, and has no unix socket
    for server in cluster.members:
        assert server.pid is not None
        assert psutil.Process(server.pid).uids().real == cluster.run_as.uid
        assert server.query("SHOW unix_socket_directories") == [("",)]
        assert server.query("SHOW listen_addresses") == [("127.0.0.1",)]


def test_secrets_are_private_and_not_in_backed_up_config(cluster: PgCluster) -> None:
    secrets_file = cluster.root / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert cluster.passfile.stat().st_mode & 0o777 == 0o600
    password = cluster.credentials.replication_password
    assert password not in repr(cluster.credentials)
    for backup in cluster.base_backups():
        for name in ("postgresql.auto.conf", "postgresql.conf", "ledgerdrill.conf"):
            assert password not in (backup.path / name).read_text()
    for log in (cluster.state_dir / "logs").glob("*.log"):
        assert cluster.credentials.app_password not in log.read_text()


def test_write_through_multi_host_dsn(cluster: PgCluster) -> None:
    dsn = cluster.dsn()
    assert "target_session_attrs=read-write" in dsn
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS dsn_check (id int PRIMARY KEY)")
        conn.execute("INSERT INTO dsn_check VALUES (1)")
        conn.commit()
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("erp", "ledgerdrill")
    # synchronous: the standby has it as soon as the commit returned
    standby = cluster.server(cluster.partner_of(cluster.primary_name) or "")
    wait_for(
        lambda: standby.query("SELECT count(*) FROM dsn_check", dbname="ledgerdrill") == [(1,)], 5
    )


# -- zone-redundant HA ------------------------------------------------------------------------


def test_crash_of_primary_fails_over_with_no_data_loss_then_old_primary_rejoins(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    controller, events = ha
    dsn = cluster.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY, amount numeric NOT NULL)")
        for i in range(200):  # each insert is a commit acknowledged by the sync standby
            conn.execute("INSERT INTO ledger VALUES (%s, 10)", [i])
    old, partner = cluster.primary_name, cluster.partner_of(cluster.primary_name)
    assert partner is not None

    crashed_at = time.monotonic()
    NodeProcesses(cluster.state_dir, old).crash()  # the node's processes, with their children
    assert not cluster.server(old).alive()
    written_at = None
    while time.monotonic() - crashed_at < 15:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO ledger VALUES (1000, 1)")
            written_at = time.monotonic()
            break
        except psycopg.OperationalError:
            time.sleep(0.05)
    assert written_at is not None, f"no write succeeded; events: {events.kinds()}"
    rto = written_at - crashed_at
    timing("crash of primary -> first successful write through the same DSN", rto)
    assert rto < controller.detection_window_s + 4

    wait_for(lambda: "failover-completed" in events.kinds(), 10, "the failover to complete")
    _, new_primary, completed = events.first("failover-completed")
    assert new_primary == partner
    assert completed["old_primary"] == old
    timing("failover (fence + promote + repoint) after detection", num(completed["failover_s"]))
    _, _, promoted = events.first("standby-promoted")
    timing("PostgreSQL promotion itself", num(promoted["promotion_s"]))
    kinds = events.kinds()
    assert kinds.index("primary-unreachable") < kinds.index("failover-started")
    assert "sync-replication-degraded" in kinds  # no standby left: commits must not hang
    assert count(dsn, "ledger") == 201  # RPO 0: every acknowledged commit survived

    topology = {m.name: m for m in cluster.topology().members}
    assert topology[old].role == "stopped"
    assert topology[partner].role == "primary"
    assert topology[partner].timeline == 2
    wait_for(lambda: cluster.follows_primary(cluster.dr_member), 10, "dr replica to follow")

    # the node comes back: the old primary rejoins as the synchronous standby (pg_rewind)
    NodeProcesses(cluster.state_dir, old).restore()
    started = time.monotonic()
    assert controller.rejoin(old) == "rewound"
    timing("rejoin of the old primary via pg_rewind", time.monotonic() - started)
    wait_for(lambda: healthy(cluster), 10, "the cluster to be healthy again")
    assert roles(cluster)[old] == "sync-standby"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO ledger VALUES (1001, 1)")
    assert cluster.server(old).query("SELECT count(*) FROM ledger", dbname="ledgerdrill") == [
        (202,)
    ]
    assert "standby-rejoined" in events.kinds()
    # its slots from when it was primary are gone (they would pin WAL on a standby)
    assert cluster.server(old).query("SELECT count(*) FROM pg_replication_slots") == [(0,)]
    assert controller.rejoin(old) == "following"  # idempotent


def test_frozen_primary_is_fenced_and_failed_over(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    """A hang (SIGSTOP of the node), not a crash: connections to it block instead of
    failing. The controller's probe has a hard deadline, and the old primary is fenced
    so it cannot wake up as a second primary."""
    controller, events = ha
    old = cluster.primary_name
    frozen = NodeProcesses(cluster.state_dir, old)
    frozen_at = time.monotonic()
    frozen.freeze()
    try:
        wait_for(lambda: "failover-completed" in events.kinds(), 15, "the failover")
        timing("freeze of primary -> failover completed", time.monotonic() - frozen_at)
        _, _, fenced = events.first("primary-fenced")
        assert fenced["processes_killed"] is True
        assert cluster.server(old).state() == "stopped"
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        assert row == (False,)
    finally:
        frozen.restore()  # the node is back (its database processes are gone)
    started = time.monotonic()
    assert controller.rejoin(old) == "rewound"
    timing("rejoin of the fenced primary via pg_rewind", time.monotonic() - started)
    wait_for(lambda: healthy(cluster), 10, "the cluster to be healthy again")


def test_a_hang_shorter_than_the_detection_window_causes_no_failover(cluster: PgCluster) -> None:
    # The hang must outlast the controller's probe timeout (or a probe sent during it is
    # simply answered late and no blip is seen) and stay well inside the detection
    # window: 0.5 s < 2 s hang < 4 s, with a second of margin either side for a loaded host.
    events = Events()
    controller = HaController(
        cluster, events, detection_window_s=4.0, poll_interval_s=0.1, probe_timeout_s=0.5
    )
    controller.start()
    try:
        primary = cluster.primary
        wait_for(lambda: len(events.items) >= 1, 5)
        primary.freeze()
        time.sleep(2.0)
        primary.thaw()
        wait_for(lambda: "primary-reachable" in events.kinds(), 5, "the primary to answer again")
        assert "primary-unreachable" in events.kinds()
        time.sleep(controller.detection_window_s)
        assert "failover-started" not in events.kinds()
        assert cluster.primary_name == primary.name
        assert primary.is_primary()
    finally:
        controller.stop()


def test_planned_switchover_keeps_every_commit(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    controller, events = ha
    old = cluster.primary_name
    before = cluster.primary.timeline_id()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS switch_check (id serial PRIMARY KEY)")
        conn.execute("INSERT INTO switch_check DEFAULT VALUES")
    started = time.monotonic()
    new = controller.switchover()
    timing("planned switchover", time.monotonic() - started)
    assert new == cluster.partner_of(old)
    assert cluster.primary.timeline_id() == before + 1
    assert count(cluster.dsn(), "switch_check") == 1
    wait_for(lambda: healthy(cluster), 10, "the cluster to be healthy again")
    assert roles(cluster)[old] == "sync-standby"
    assert "switchover-completed" in events.kinds()
    assert "failover-started" not in events.kinds()  # the controller knew it was planned


def test_losing_the_sync_standby_degrades_then_restores_sync_replication(
    cluster: PgCluster, ha: tuple[HaController, Events]
) -> None:
    controller, events = ha
    standby = cluster.server(cluster.partner_of(cluster.primary_name) or "")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS degrade_check (id serial PRIMARY KEY)")
    standby.freeze()  # a hung standby: its connection stays open, it just never answers
    try:
        started = time.monotonic()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO degrade_check DEFAULT VALUES")  # waits, then released
        timing(
            "commit blocked by a frozen sync standby until HA degraded", time.monotonic() - started
        )
        _, _, degraded = events.first("sync-replication-degraded")
        assert degraded["standby"] == standby.name
        assert cluster.primary.synchronous_standby_names() == ""
    finally:
        standby.thaw()
    wait_for(lambda: "sync-replication-restored" in events.kinds(), 20, "sync to be restored")
    wait_for(lambda: healthy(cluster), 10, "the cluster to be healthy again")
    assert controller.running


def test_unreplicated_commit_warning_is_detectable(cluster: PgCluster) -> None:
    """The sync-replication trap, shown for real: a cancelled wait for the standby is a
    *successful* commit with a WARNING that the notice handler sees."""
    primary = cluster.primary
    standby = cluster.server(cluster.partner_of(primary.name) or "")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS trap (id int)")
    # a Diagnostic is only valid inside the handler: decide there, keep plain values
    notices: list[tuple[bool, str]] = []
    errors: list[BaseException] = []
    standby.freeze()
    try:
        conn = psycopg.connect(cluster.dsn())
        conn.add_notice_handler(
            lambda d: notices.append((is_unreplicated_commit_notice(d), d.message_primary or ""))
        )
        backend = conn.info.backend_pid

        def commit() -> None:
            try:
                conn.execute("INSERT INTO trap VALUES (42)")
                conn.commit()
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=commit)
        worker.start()
        wait_for(
            lambda: primary.query(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'SyncRep'",
                [backend],
            ),
            10,
            "the commit to wait for the standby",
        )
        primary.query("SELECT pg_cancel_backend(%s)", [backend])
        worker.join(10)
        conn.close()
    finally:
        standby.thaw()
    assert errors == []  # the client was told: success
    assert [flag for flag, _ in notices] == [True], notices
    assert primary.query("SELECT count(*) FROM trap WHERE id = 42", dbname="ledgerdrill") == [(1,)]
    wait_for(lambda: healthy(cluster), 20, "the cluster to be healthy again")


def test_frozen_walsender_makes_dr_replica_lag_and_thaw_catches_up(cluster: PgCluster) -> None:
    dr = cluster.server(cluster.dr_member)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS geo (id int)")
    wait_for(
        lambda: (
            dr.query("SELECT to_regclass('geo') IS NOT NULL", dbname="ledgerdrill") == [(True,)]
        ),
        10,
    )
    pid = cluster.freeze_walsender()
    try:
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO geo SELECT generate_series(1, 5000)")  # sync: not blocked
        # synchronous_commit = on waits for the standby's *flush*, not its replay, and
        # lag_bytes counts to replay: the synchronous standby may still be replaying for
        # an instant (320 kB seen in a fresh-clone CI run). It catches up at once; the
        # DR replica, whose walsender is frozen, does not.
        standby = application_name(cluster.partner_of(cluster.primary_name) or "")

        def lags() -> dict[str, int]:
            return {r.application_name: r.lag_bytes for r in cluster.primary.replication()}

        wait_for(lambda: lags()[standby] == 0, 10, "the synchronous standby to replay")
        lag = lags()
        print(f"\n[lag] dr replica behind by {lag['dr_db']} bytes while its walsender is frozen")
        assert lag["dr_db"] > 0
        assert dr.query("SELECT count(*) FROM geo", dbname="ledgerdrill") == [(0,)]
    finally:
        cluster.thaw_walsender()
    started = time.monotonic()
    wait_for(lambda: dr.query("SELECT count(*) FROM geo", dbname="ledgerdrill") == [(5000,)], 15)
    timing("dr replica catch-up after thaw", time.monotonic() - started)
    wait_for(
        lambda: (
            {r.application_name: r.lag_bytes for r in cluster.primary.replication()}["dr_db"] == 0
        ),
        10,
    )


# -- backups ----------------------------------------------------------------------------------


def test_point_in_time_restore_brings_back_deleted_rows(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int PRIMARY KEY, total numeric)")
        conn.execute("INSERT INTO invoices SELECT i, i * 1.5 FROM generate_series(1, 100) i")
        time.sleep(0.2)
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        good_at: datetime = row[0]
        time.sleep(0.2)
        conn.execute("DELETE FROM invoices")  # the bad change
    assert count(cluster.dsn(), "invoices") == 0
    started = time.monotonic()
    restored = cluster.restore_to_point_in_time(good_at)
    timing("point-in-time restore into a new server", time.monotonic() - started)
    try:
        assert restored.is_primary()
        assert restored.port not in cluster.ports.values()
        assert count(cluster.server_dsn(restored.name), "invoices") == 100
        assert count(cluster.dsn(), "invoices") == 0  # the cluster itself is untouched
        # the restored server is a server of its own: it does not archive into the cluster's WAL
        assert restored.query("SHOW archive_mode") == [("off",)]
    finally:
        cluster.drop_restored(restored.name)
    assert not restored.alive()
    assert not port_open(restored.port)


def test_restore_refuses_a_target_before_any_backup(cluster: PgCluster) -> None:
    from datetime import UTC, timedelta

    from ledgerdrill.errors import PlatformError

    oldest = cluster.base_backups()[0].usable_from
    with pytest.raises(PlatformError, match="no base backup"):
        cluster.restore_to_point_in_time(oldest - timedelta(hours=1))
    with pytest.raises(PlatformError, match="timezone-aware"):
        cluster.restore_to_point_in_time(datetime.now(UTC).replace(tzinfo=None))


def test_crash_kills_the_postmaster_and_all_its_children(cluster: PgCluster) -> None:
    """``crash()`` takes the children too (a SIGKILL of the postmaster alone would leave
    backends serving their sessions)."""
    dr = cluster.server(cluster.dr_member)
    pid = dr.pid
    assert pid is not None
    children = psutil.Process(pid).children(recursive=True)
    assert children
    dr.crash()
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    assert not port_open(dr.port)
    assert cluster.rejoin(dr.name) == "restarted"  # a standby needs no rewind
    wait_for(lambda: healthy(cluster), 10, "the cluster to be healthy again")


# -- lifecycle --------------------------------------------------------------------------------


def test_down_leaves_nothing_running_and_up_starts_it_again(cluster: PgCluster) -> None:
    primary = cluster.primary_name
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survives_restart (id int)")
        conn.execute("INSERT INTO survives_restart VALUES (7)")
    processes = server_processes(cluster)
    assert processes
    started = time.monotonic()
    PgCluster(cluster.state_dir).down()  # as `sandbox down` from another process would
    timing("down", time.monotonic() - started)
    assert_down(cluster, processes)
    started = time.monotonic()
    cluster.up()
    timing("warm start (existing data)", time.monotonic() - started)
    assert cluster.primary_name == primary
    wait_for(lambda: healthy(cluster), 10, "the cluster to be healthy again")
    assert count(cluster.dsn(), "survives_restart") == 1


def test_the_keeper_repairs_a_cluster_left_without_its_standby(
    keeper: ClusterKeeper, cluster: PgCluster
) -> None:
    """What keeps one failure from cascading: a cluster left with its synchronous
    standby crashed and synchronous replication switched off is healthy again for the
    next test, and the repair is on record."""
    partner = cluster.partner_of(cluster.primary_name) or ""
    cluster.server(partner).crash()
    cluster.primary.set_synchronous_standby(None)
    assert not healthy(cluster)
    repaired = keeper.ready_for("the next test", settle_s=0.5)
    assert healthy(repaired)
    assert repaired.primary.synchronous_standby_names() == f"FIRST 1 ({application_name(partner)})"
    assert keeper.repairs[-1] == "repaired before the next test"


# -- clusters of their own (they end broken on purpose) ---------------------------------------


def test_regional_failover_promotes_dr_replica_and_loses_what_it_had_not_received() -> None:
    state = state_folder("ldpg-own-")
    pg = PgCluster(state)
    try:
        pg.up()
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE journal (id int)")
            conn.execute("INSERT INTO journal SELECT generate_series(1, 10)")
        dr = pg.server(pg.dr_member)
        wait_for(
            lambda: dr.query("SELECT count(*) FROM journal", dbname="ledgerdrill") == [(10,)], 10
        )
        pg.freeze_walsender()  # the geo link lags ...
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO journal SELECT generate_series(11, 15)")
        for name in pg.ha_pair:  # ... and the primary region is lost
            NodeProcesses(state, name).crash()
        started = time.monotonic()
        assert pg.promote_dr() == pg.dr_member
        timing("regional DR promotion", time.monotonic() - started)
        assert count(pg.dr_dsn(), "journal") == 10  # RPO > 0: five rows never arrived
        with psycopg.connect(pg.dr_dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO journal VALUES (99)")  # writes work in the DR region
        assert roles(pg)[pg.dr_member] == "primary"
    finally:
        take_down(pg)


def test_dr_replica_that_diverged_after_failover_is_rebuilt() -> None:
    """With sync replication degraded, the DR replica can receive WAL the standby never
    had; after a failover it cannot follow the new timeline and must be re-seeded."""
    state = state_folder("ldpg-own-")
    pg = PgCluster(state)
    events = Events()
    controller = HaController(pg, events, detection_window_s=1.0, follow_timeout_s=3.0)
    try:
        pg.up()
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int)")
        old, partner = pg.primary_name, pg.partner_of(pg.primary_name) or ""
        pg.primary.set_synchronous_standby(None)  # degraded: commits do not wait for db-b
        pg.freeze_walsender(partner)
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        dr = pg.server(pg.dr_member)
        wait_for(lambda: dr.query("SELECT count(*) FROM t", dbname="ledgerdrill") == [(1000,)], 10)
        pg.server(old).crash()  # the frozen walsender dies with it
        controller.start()
        try:
            wait_for(
                lambda: "replica-rebuilt" in events.kinds(), 30, "the dr replica to be rebuilt"
            )
        except AssertionError:
            print("EVENTS", events.items)
            print((state / "logs" / "postgres@dr-db.log").read_text()[-3000:])
            raise
        _, name, rebuilt = events.first("replica-rebuilt")
        assert name == pg.dr_member
        assert pg.follows_primary(pg.dr_member)
        assert dr.query("SELECT count(*) FROM t", dbname="ledgerdrill") == [(0,)]  # as on db-b
        print(f"\n[rebuild] {rebuilt}")
    finally:
        controller.stop()
        take_down(pg)
