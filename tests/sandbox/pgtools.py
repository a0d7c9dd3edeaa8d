"""Shared by the tests that drive real PostgreSQL clusters: the HA controller's events,
bounded waits, the shapes a cluster should be in, and ``ClusterKeeper``.

The keeper is how one module-scoped cluster (it takes seconds to build) is shared
without one failure cascading into the tests after it: before each test it hands out a
cluster in the expected shape -- waiting for what settles by itself, then repairing,
then rebuilding from scratch -- and after each test that passed it checks the shape
again and fails that test (an error at teardown) if it left the cluster broken. The
failure stays with the test that caused it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.nodes import NodeProcesses
from ledgerdrill.platforms.sandbox.postgres import PgCluster, proctree
from ledgerdrill.platforms.sandbox.postgres.server import application_name
from ledgerdrill.platforms.sandbox.procs import port_open

Shape = Callable[[PgCluster], bool]


def timing(name: str, seconds: float) -> None:
    print(f"\n[timing] {name}: {seconds:.2f}s")


class Events:
    """Collects HaController events (what a drill's timeline receives), with the
    monotonic time each arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str, str, dict[str, object]]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, name: str, attributes: dict[str, object]) -> None:
        with self.lock:
            self.items.append((time.monotonic(), kind, name, attributes))

    def kinds(self) -> list[str]:
        with self.lock:
            return [kind for _, kind, _, _ in self.items]

    def first(self, kind: str) -> tuple[float, str, dict[str, object]]:
        with self.lock:
            for at, k, name, attributes in self.items:
                if k == kind:
                    return at, name, attributes
        raise AssertionError(f"no {kind} event in {self.kinds()}")


def wait_for(predicate: Callable[[], object], timeout_s: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true (exceptions count as not yet), bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def settles(predicate: Callable[[], object], timeout_s: float) -> bool:
    try:
        wait_for(predicate, timeout_s)
    except AssertionError:
        return False
    return True


def roles(cluster: PgCluster) -> dict[str, str]:
    return {m.name: m.role for m in cluster.topology().members}


def healthy(cluster: PgCluster) -> bool:
    """Whichever member is primary: its HA partner streams as the synchronous standby
    and the DR member as the asynchronous replica, both on the primary's timeline."""
    rows = {r.application_name: r for r in cluster.primary.replication()}
    partner = cluster.partner_of(cluster.primary_name)
    if partner is None:
        return False
    sync = rows.get(application_name(partner))
    dr = rows.get(application_name(cluster.dr_member))
    return (
        sync is not None
        and (sync.state, sync.sync_state) == ("streaming", "sync")
        and dr is not None
        and (dr.state, dr.sync_state) == ("streaming", "async")
        and cluster.follows_primary(partner)
        and cluster.follows_primary(cluster.dr_member)
    )


def in_original_shape(cluster: PgCluster) -> bool:
    """Healthy, with the first member of the HA pair as the primary, as built."""
    return cluster.primary_name == cluster.ha_pair[0] and healthy(cluster)


def state_folder(prefix: str) -> Path:
    """Under /tmp, traversable by everyone: the servers run as ``nobody`` when we are
    root, and pytest's own tmp_path (``/tmp/pytest-of-root``, 0700) is not."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder


def server_processes(cluster: PgCluster) -> list[psutil.Process]:
    """Every process of every server of ``cluster`` now: postmasters and children."""
    found: list[psutil.Process] = []
    for server in [*cluster.members, *cluster.restored.values()]:
        if server.pid is not None and server.alive():
            found += proctree.members(server.pid)
    return found


def assert_down(cluster: PgCluster, processes: list[psutil.Process]) -> None:
    """No process of the servers left (zombies awaiting init's reaping run nothing),
    no port bound, no pid file."""
    servers = [*cluster.members, *cluster.restored.values()]
    left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert not any(port_open(s.port) for s in servers)
    assert list(cluster.state_dir.glob("nodes/*/*.pid")) == []


def take_down(cluster: PgCluster) -> None:
    """Stop every server and check nothing of them is left, then remove the folder."""
    processes = server_processes(cluster)
    cluster.down()
    assert_down(cluster, processes)
    shutil.rmtree(cluster.state_dir, ignore_errors=True)


class ClusterKeeper:
    """A module's shared cluster, kept in ``shape`` between tests (see the module
    docstring). ``repairs`` lists what each repair or rebuild was for, printed so a
    repaired run is visible in the output."""

    def __init__(self, shape: Shape, prefix: str, *, settle_s: float = 10.0) -> None:
        self.shape = shape
        self.prefix = prefix
        self.settle_s = settle_s
        self.cluster = self._build()
        self.repairs: list[str] = []

    def _build(self) -> PgCluster:
        cluster = PgCluster(state_folder(self.prefix))
        started = time.monotonic()
        cluster.up()
        timing("cold start of the cluster", time.monotonic() - started)
        return cluster

    def in_shape(self, timeout_s: float) -> bool:
        return settles(lambda: self.shape(self.cluster), timeout_s)

    def ready_for(self, test: str, *, settle_s: float | None = None) -> PgCluster:
        """The cluster in shape for ``test``: settled, repaired or rebuilt."""
        if self.in_shape(self.settle_s if settle_s is None else settle_s):
            return self.cluster
        self.repairs.append(f"repaired before {test}")
        print(f"\n[keeper] the cluster is out of shape before {test}: repairing")
        with contextlib.suppress(Exception):
            self._repair()
        if self.in_shape(self.settle_s):
            return self.cluster
        self.repairs.append(f"rebuilt before {test}")
        print(f"\n[keeper] repair did not help before {test}: rebuilding the cluster")
        with contextlib.suppress(Exception):
            take_down(self.cluster)
        self.cluster = self._build()
        assert self.in_shape(self.settle_s), "a freshly built cluster is not in shape"
        return self.cluster

    def _repair(self) -> None:
        """What the tests may leave behind: nodes down or frozen, a frozen walsender,
        a restored server, a regional failover, a stopped or diverged standby,
        synchronous replication degraded, the primary on the other zone."""
        cluster = self.cluster
        for node in cluster.specs:
            NodeProcesses(cluster.state_dir, node).restore()
        for server in cluster.members:
            server.thaw()
        cluster.thaw_walsender()
        for name in list(cluster.restored):
            cluster.drop_restored(name)
        if cluster.regional_failover_active:
            cluster.fail_back()
        for server in cluster.members:
            if server.name != cluster.primary_name:
                with contextlib.suppress(PlatformError):
                    cluster.rejoin(server.name, restore_sync=True)
        home = cluster.ha_pair[0]
        if self.shape is in_original_shape and cluster.primary_name != home:
            settles(lambda: healthy(cluster), self.settle_s)
            cluster.switchover(home)

    def close(self) -> None:
        if self.repairs:
            print(f"\n[keeper] {self.prefix}: {'; '.join(self.repairs)}")
        take_down(self.cluster)


@contextlib.contextmanager
def kept(keeper: ClusterKeeper, request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """The per-test half of the keeper: in shape before; after a test that passed,
    still in shape (bounded settle) or that test errors at teardown."""
    yield keeper.ready_for(request.node.name)
    report = getattr(request.node, "ledgerdrill_call_report", None)
    if report is not None and report.passed and not keeper.in_shape(keeper.settle_s):
        topology = {m.name: (m.role, m.timeline) for m in keeper.cluster.topology().members}
        raise AssertionError(
            f"{request.node.name} passed but left the shared cluster out of shape: {topology}"
        )
