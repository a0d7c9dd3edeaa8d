"""``PgCluster``: the sandbox's PostgreSQL topology, built from real servers.

The shape of a zone-redundant managed PostgreSQL with a geo-replica:

* ``db-a`` (zone a): the primary;
* ``db-b`` (zone b): the **synchronous** standby (``synchronous_standby_names =
  'FIRST 1 (db_b)'``): a commit returns only once ``db-b`` has flushed it -- RPO 0;
* ``dr-db`` (region dr): an **asynchronous** replica -- after a regional failover
  whatever it had not received is lost (RPO > 0), which the drills measure;
* ``<state>/object-storage/wal`` (continuous WAL archive) and ``.../base`` (base
  backups): point-in-time restore into a new server, which ``adopt_restored`` makes
  the HA cluster's data again (back to the shape above, on a timeline of its own).

Regional DR: ``promote_dr`` makes the DR replica the primary and fences the primary
region's members (``fenced`` in ``cluster.json``: ``up`` does not start them, the HA
controller stands aside); ``fail_back`` rebuilds them as standbys of the DR primary and
switches back over to the original primary: the original shape again.

Applications connect with ``dsn()``: a multi-host libpq string over the HA pair with
``target_session_attrs=read-write``, so after a promotion a reconnect finds the new
primary. Member names are node names; a member's postmaster pid file lives in its node
folder so that node faults (crash, freeze) act on it. The cluster acts only when told
to; deciding *when* to fail over is ``HaController``'s job.

Which member is primary is also written to ``<state>/postgres/cluster.json`` (with the
ports), so another process -- ``sandbox status``, a drill -- sees the same cluster.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from psycopg.conninfo import make_conninfo

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import DatabaseMember, DatabaseTopology
from ledgerdrill.platforms.sandbox.links import saved_link_port
from ledgerdrill.platforms.sandbox.nodes import DOWN, FROZEN
from ledgerdrill.platforms.sandbox.postgres import backup as backups
from ledgerdrill.platforms.sandbox.postgres import conf
from ledgerdrill.platforms.sandbox.postgres.binaries import PgBinaries, locate_binaries
from ledgerdrill.platforms.sandbox.postgres.credentials import (
    APP_DATABASE,
    APP_USER,
    REPLICATION_USER,
    PgCredentials,
    load_or_create,
    scram_verifier,
    write_passfile,
)
from ledgerdrill.platforms.sandbox.postgres.promotion_witness import PromotionWitness
from ledgerdrill.platforms.sandbox.postgres.server import PgServer, application_name
from ledgerdrill.platforms.sandbox.procs import RunAs, port_open, run, wait_until
from ledgerdrill.platforms.sandbox.topology import Topology, default_topology
from ledgerdrill.ports import free_port

STATE_FILE = "cluster.json"
# a WAL segment (or its .partial / .backup companion) and a timeline history file
_SEGMENT = re.compile(r"^([0-9A-F]{8})[0-9A-F]{16}(\.partial|\.[0-9A-F]{8}\.backup)?$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")


@dataclass(frozen=True)
class MemberSpec:
    name: str  # also the node it runs on
    zone: str
    region: str
    initial_role: str  # primary | sync-standby | async-replica


def members_from(topology: Topology) -> tuple[MemberSpec, MemberSpec, MemberSpec]:
    """The three database nodes of the sandbox topology, by role."""

    def one(role: str) -> MemberSpec:
        found = topology.with_role(role)
        if len(found) != 1:
            raise PlatformError(f"the sandbox topology needs exactly one {role} node")
        node = found[0]
        return MemberSpec(node.name, node.zone, node.region, role.removeprefix("db-"))

    return one("db-primary"), one("db-sync-standby"), one("db-async-replica")


def restored_name(target_time: datetime) -> str:
    """The restored server for a point in time: the same point, the same server."""
    return f"pitr-{target_time.astimezone(UTC):%Y%m%dt%H%M%S%f}"


class PgCluster:
    """Primary + synchronous standby + asynchronous DR replica + archive and backups.

    Thread-safe: every action holds ``self.lock`` (the HA controller's thread and the
    platform act on the same cluster)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        topology: Topology | None = None,
        run_as: RunAs | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.root = self.state_dir / "postgres"
        self.wal_dir = self.state_dir / "object-storage" / "wal"
        self.base_dir = self.state_dir / "object-storage" / "base"
        self.run_as = run_as or RunAs.for_unprivileged_programs()
        primary, standby, replica = members_from(topology or default_topology())
        self.specs = {spec.name: spec for spec in (primary, standby, replica)}
        self.ha_pair = (primary.name, standby.name)
        self.dr_member = replica.name
        self.lock = threading.RLock()
        self.primary_name = primary.name
        self.ports: dict[str, int] = {}
        self.restored: dict[str, PgServer] = {}
        # restored servers whose restore finished (the others hold partial data)
        self.restored_complete: set[str] = set()
        self._servers: dict[str, PgServer] = {}
        self._frozen_walsenders: dict[str, int] = {}
        # members of the primary region fenced by ``promote_dr`` until ``fail_back``:
        # they must never start as a primary (``up`` leaves them stopped)
        self.fenced: set[str] = set()
        self.last_rewind_error: str | None = None  # why the last rejoin had to rebuild
        self.last_fail_back: dict[str, str] = {}  # member -> rewound | rebuilt
        self._binaries: PgBinaries | None = None
        self._credentials: PgCredentials | None = None
        # the database's witness of each promotion's data loss; the daemon sets its sink
        self.promotions = PromotionWitness()
        # (member, server) -> the port member's WAL stream from server connects to; the
        # daemon sets it to route streams through network links (``sandbox/links.py``)
        self.stream_route: Callable[[str, PgServer], int] | None = None

    # -- wiring -------------------------------------------------------------------------
    @property
    def credentials(self) -> PgCredentials:
        if self._credentials is None:
            self._credentials = load_or_create(self.root / "secrets.json")
        return self._credentials

    @property
    def passfile(self) -> Path:
        return self.root / "pgpass"

    def _route(self, member: str, server: PgServer) -> int:
        """The port ``member`` streams from ``server`` through: the daemon's route, or --
        in any other process -- the link the daemon saved for the pair, else direct."""
        if self.stream_route is not None:
            return self.stream_route(member, server)
        return saved_link_port(self.state_dir, member, server.name) or server.port

    def _make_server(self, name: str, port: int) -> PgServer:
        if self._binaries is None:
            self._binaries = locate_binaries(self.run_as)
        server = PgServer(
            name,
            name,
            data_dir=self.root / name / "data",
            port=port,
            binaries=self._binaries,
            credentials=self.credentials,
            passfile=self.passfile,
            archive_dir=self.wal_dir,
            log_path=self.state_dir / "logs" / f"postgres@{name}.log",
            pid_path=self.state_dir / "nodes" / name / "postgres.pid",
            run_as=self.run_as,
        )
        server.stream_route = self._route
        return server

    def _attach(self) -> None:
        """Know the servers of a cluster built earlier (maybe by another process)."""
        if not self._servers and self._load_state():
            self._servers = {n: self._make_server(n, self.ports[n]) for n in self.specs}

    def server(self, name: str) -> PgServer:
        self._attach()
        if name in self._servers:
            return self._servers[name]
        if name in self.restored:
            return self.restored[name]
        known = ", ".join([*self.specs, *self.restored])
        raise PlatformError(f"the sandbox database has no member {name!r} (members: {known})")

    @property
    def members(self) -> list[PgServer]:
        self._attach()
        return [self._servers[name] for name in self.specs if name in self._servers]

    @property
    def primary(self) -> PgServer:
        self._attach()  # a cluster read from another process's state: its primary, not ours
        return self.server(self.primary_name)

    def partner_of(self, name: str) -> str | None:
        """The other half of the zone-redundant pair (None for the DR replica)."""
        if name not in self.ha_pair:
            return None
        return self.ha_pair[1] if name == self.ha_pair[0] else self.ha_pair[0]

    def _save_state(self) -> None:
        data = {
            "primary": self.primary_name,
            "ports": self.ports,
            "restored": {name: s.port for name, s in self.restored.items()},
            "restored_complete": sorted(self.restored_complete & set(self.restored)),
            "fenced": sorted(self.fenced),
        }
        path = self.root / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    def saved_ports(self) -> dict[str, int]:
        """The members' ports as the state file keeps them (empty before a first start)."""
        try:
            data = json.loads((self.root / STATE_FILE).read_text())
            return {str(k): int(v) for k, v in data["ports"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _load_state(self) -> bool:
        try:
            data = json.loads((self.root / STATE_FILE).read_text())
        except FileNotFoundError:
            return False
        except ValueError as exc:
            raise PlatformError(f"{self.root / STATE_FILE} is damaged: {exc}") from exc
        self.primary_name = str(data["primary"])
        self.ports = {str(k): int(v) for k, v in data["ports"].items()}
        for name, port in dict(data.get("restored", {})).items():
            self.restored[str(name)] = self._make_server(str(name), int(port))
        self.restored_complete = {str(n) for n in data.get("restored_complete", [])}
        self.fenced = {str(name) for name in data.get("fenced", [])}
        return True

    @property
    def regional_failover_active(self) -> bool:
        """True between ``promote_dr`` and ``fail_back`` (or ``adopt_restored``): the
        DR replica is the primary and the primary region's members are fenced. The HA
        controller stands aside meanwhile (there is no zone-redundant pair to manage)."""
        return bool(self.fenced)

    def _node_unavailable(self, name: str) -> str:
        """The node's marker (``nodes.py``) when it is down or frozen, else ``""``."""
        folder = self.state_dir / "nodes" / name
        for marker in (DOWN, FROZEN):
            if (folder / marker).exists():
                return marker
        return ""

    # -- up / down ------------------------------------------------------------------------
    def up(self, timeout_s: float = 60.0) -> None:
        """Start the cluster: the first time, build it (initdb, base backups for the
        standbys, sync replication, a first base backup in object storage); later,
        start the members as they were left -- except members fenced by a regional
        failover (``promote_dr``): started as they were left they would come up as a
        second primary; ``fail_back`` brings them back. Blocks until replication runs."""
        with self.lock:
            try:
                if self._load_state() and all(
                    (self.root / name / "data").is_dir() for name in self.specs
                ):
                    self._servers = {}
                    self._attach()
                    startable = [s for s in self.members if s.name not in self.fenced]
                    self._parallel(lambda s: s.start(timeout_s), startable)
                else:
                    self._build(timeout_s)
                self._wait_replicating(timeout_s)
            except BaseException:
                with contextlib.suppress(PlatformError):
                    self.down()  # the original error is the one worth reporting
                raise

    def _prepare_folders(self) -> None:
        for folder in (self.root, self.wal_dir, self.base_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.run_as.give(self.root)
        self.run_as.give(self.wal_dir.parent)
        self.root.chmod(0o700)
        if self.run_as.is_other_user:
            test = "/usr/bin/test" if Path("/usr/bin/test").exists() else "/bin/test"
            try:
                run([test, "-w", str(self.root), "-a", "-w", str(self.wal_dir)], run_as=self.run_as)
            except PlatformError:
                raise PlatformError(
                    f"user {self.run_as.name} (PostgreSQL refuses to run as root) cannot "
                    f"reach {self.state_dir}: a parent folder is private. Use a state "
                    "folder every user can traverse (e.g. under /tmp or the project)."
                ) from None

    def _build(self, timeout_s: float) -> None:
        self._prepare_folders()
        creds = self.credentials
        write_passfile(self.passfile, creds, self.run_as)
        used: set[int] = set()
        for name in self.specs:
            port = free_port()
            while port in used:
                port = free_port()
            used.add(port)
            self.ports[name] = port
        self._servers = {n: self._make_server(n, self.ports[n]) for n in self.specs}
        primary_name, standby_name = self.ha_pair
        self.primary_name = primary_name
        primary = self._servers[primary_name]
        primary.init_primary()
        primary.start(timeout_s)
        app_password = scram_verifier(creds.app_password)
        repl_password = scram_verifier(creds.replication_password)
        with primary.connect() as conn:
            conn.execute(
                f"CREATE ROLE {REPLICATION_USER} LOGIN REPLICATION PASSWORD '{repl_password}'"
            )
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{app_password}'")
            conn.execute(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}")
        for name in self.specs:
            if name != primary_name:
                primary.ensure_slot(application_name(name))

        def clone(server: PgServer) -> None:
            server.init_standby_from(primary, slot=server.application_name)
            server.start(timeout_s)

        self._parallel(clone, [s for s in self.members if s is not primary])
        primary.set_synchronous_standby(standby_name)
        self._save_state()
        self._wait_replicating(timeout_s)
        self.take_base_backup()

    def _wait_replicating(self, timeout_s: float) -> None:
        """Until every running standby streams from the primary (the sync one as sync)."""
        primary = self.primary
        wanted = {s.application_name for s in self.members if s is not primary and s.alive()}

        def streaming() -> bool:
            rows = {r.application_name: r for r in primary.replication()}
            return all(name in rows and rows[name].state == "streaming" for name in wanted)

        wait_until(streaming, timeout_s=timeout_s, what="the standbys to stream", interval_s=0.1)

    @staticmethod
    def _parallel(action: Callable[[PgServer], object], servers: Iterable[PgServer]) -> None:
        servers = list(servers)
        if not servers:
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(servers)) as pool:
            for future in [pool.submit(action, s) for s in servers]:
                future.result()

    def down(self, timeout_s: float = 30.0) -> None:
        """Stop every server (members and restored ones) and verify: no process left,
        no port bound. The data stays; ``up()`` starts it again."""
        with self.lock:
            self._attach()
            self.thaw_walsender()
            servers = [*self.members, *self.restored.values()]
            self._parallel(lambda s: s.stop(fast=True, timeout_s=timeout_s), servers)
            left = [s.name for s in servers if s.alive()]
            if left:
                raise PlatformError(f"database servers still running after down: {left}")
            wait_until(
                lambda: not any(port_open(s.port) for s in servers),
                timeout_s=10,
                what="the database ports to close",
            )

    # -- connection strings --------------------------------------------------------------
    def _require_ports(self) -> None:
        if not self.ports and not self._load_state():
            raise PlatformError(f"the sandbox database in {self.state_dir} was never started")

    def dsn(self, user: str = APP_USER, *, dbname: str = APP_DATABASE) -> str:
        """Multi-host libpq string over the HA pair (contains the password: never log
        it). ``target_session_attrs=read-write`` makes a reconnect find the primary."""
        self._require_ports()
        hosts = [self.ports[name] for name in self.ha_pair]
        return make_conninfo(
            host=",".join("127.0.0.1" for _ in hosts),
            port=",".join(str(p) for p in hosts),
            dbname=dbname,
            user=user,
            password=self.credentials.password(user),
            target_session_attrs="read-write",
            connect_timeout=2,
        )

    def dr_dsn(self, user: str = APP_USER, *, dbname: str = APP_DATABASE) -> str:
        """The DR region's database (read-write only once ``promote_dr`` ran)."""
        return self.server_dsn(self.dr_member, user, dbname=dbname)

    def server_dsn(self, name: str, user: str = APP_USER, *, dbname: str = APP_DATABASE) -> str:
        """One server's DSN (a restored server, for the runbook's checks)."""
        return self.server(name).conninfo(user, dbname)

    # -- inspection ------------------------------------------------------------------------
    def topology(self) -> DatabaseTopology:
        """Roles read from the servers themselves (two "primary" rows = split brain).

        A frozen member is reported "stopped" (it serves nothing; asking it would hang)
        with timeline 0; a standby's role is what the primary's ``pg_stat_replication``
        says (``sync`` -> sync-standby), or, when it is not connected, what the primary's
        ``synchronous_standby_names`` configures it to be."""
        with self.lock:
            states = {s.name: s.state() for s in self.members}
            primaries: dict[str, bool] = {}
            for server in self.members:
                if states[server.name] == "running":
                    with contextlib.suppress(PlatformError):
                        primaries[server.name] = server.is_primary()
            rows: dict[str, Any] = {}
            sync_names = ""
            current = self.primary_name
            if primaries.get(current):
                with contextlib.suppress(PlatformError):
                    rows = {r.application_name: r for r in self._servers[current].replication()}
                    sync_names = self._servers[current].synchronous_standby_names()
            members = []
            for server in self.members:
                role, lag, streaming = "stopped", None, None
                if server.name in primaries:
                    if primaries[server.name]:
                        role = "primary"
                    else:
                        row = rows.get(server.application_name)
                        lag = row.lag_bytes if row is not None else None
                        streaming = row is not None and row.state == "streaming"
                        if row is not None:
                            sync = row.sync_state == "sync"
                        else:
                            sync = f"({server.application_name})" in sync_names
                        role = "sync-standby" if sync else "async-replica"
                timeline = 0
                if states[server.name] != "frozen":
                    with contextlib.suppress(PlatformError):
                        timeline = server.timeline_id()
                members.append(
                    DatabaseMember(server.name, server.node, role, timeline, lag, streaming)
                )
            return DatabaseTopology(tuple(members))

    # -- failover building blocks ------------------------------------------------------------
    def promote(self, name: str) -> float:
        """Promote a standby and make it the cluster's primary, with no synchronous
        standby yet (nothing to wait for). Returns PostgreSQL's promotion time (s).
        Does not fence the old primary: that is the caller's decision."""
        with self.lock:
            server = self.server(name)
            old = self.server(self.primary_name)
            was_sync_standby = self.promotions.before(old, server)
            took = server.promote()
            server.set_synchronous_standby(None)
            self.primary_name = name
            self._save_state()
            if old is not server:
                self.promotions.after(old, server, was_sync_standby)
            return took

    def repoint_replicas(self, new_primary: str | None = None) -> list[str]:
        """Point every running standby at ``new_primary`` (default: the current one):
        a slot for each on the new primary, ``ALTER SYSTEM SET primary_conninfo`` and a
        reload. Stopped or frozen members are left for ``rejoin``."""
        with self.lock:
            target = self.server(new_primary or self.primary_name)
            moved = []
            for server in self.members:
                if server is target or server.state() != "running":
                    continue
                with contextlib.suppress(PlatformError):
                    if server.is_primary():
                        continue  # a split-brain survivor is rejoin's business
                    target.ensure_slot(server.application_name)
                    server.follow(target, slot=server.application_name)
                    moved.append(server.name)
            return moved

    def follows_primary(self, name: str) -> bool:
        """True when ``name`` streams from the current primary *on its timeline*, asked
        of the replica itself. (The primary's ``pg_stat_replication`` is not enough: a
        replica that diverged keeps reconnecting to stream the old timeline's history,
        and shows up there as "streaming" for a moment each time.)"""
        return self.follows_primary_of(name, self.primary)

    def rejoin(
        self,
        member: str,
        *,
        restore_sync: bool = True,
        timeout_s: float = 60.0,
        follow_timeout_s: float = 5.0,
    ) -> str:
        """Bring ``member`` back as a standby of the current primary; idempotent.

        The cheapest way that works: a standby that was merely stopped or pointed
        elsewhere is restarted / repointed; one that does not then stream within
        ``follow_timeout_s`` (it has WAL the primary never had -- a former primary always
        has) is ``pg_rewind``-ed; when that fails too (no common history left) it is
        rebuilt with a new ``pg_basebackup``. With ``restore_sync`` the HA partner becomes
        the synchronous standby again once it streams. Returns what was done:
        ``following`` | ``restarted`` | ``repointed`` | ``rewound`` | ``rebuilt``."""
        with self.lock:
            primary = self.primary
            server = self.server(member)
            if server is primary:
                raise PlatformError(f"{member} is the primary; there is nothing to rejoin")
            how = "following"
            if not self.follows_primary(member):
                primary.ensure_slot(server.application_name)
                how = self._reattach(server, primary, follow_timeout_s)
                if how == "":
                    how = self._rewind_or_rebuild(server, primary, timeout_s)
                    wait_until(
                        lambda: self.follows_primary(member),
                        timeout_s=timeout_s,
                        what=f"{member} to stream from {primary.name}",
                        interval_s=0.1,
                    )
                with contextlib.suppress(PlatformError):
                    server.drop_slots()  # its slots from when it was primary pin WAL
            if restore_sync and self.partner_of(primary.name) == member:
                primary.set_synchronous_standby(member)
            return how

    def _reattach(self, server: PgServer, primary: PgServer, follow_timeout_s: float) -> str:
        """Restart or repoint a standby; "" when it is not one or does not follow."""
        self.promotions.wait()  # a former primary's WAL is evidence until it is read
        state = server.state()
        if state == "frozen":
            server.stop(fast=True)
            state = "stopped"
        if state == "stopped":
            if not (server.data_dir / "standby.signal").exists():
                return ""  # a former primary: it has to be rewound
            server.configure_as_standby_of(primary, slot=server.application_name)
            server.start()
            how = "restarted"
        else:
            try:
                if server.is_primary():
                    return ""
                server.follow(primary, slot=server.application_name)
            except PlatformError:
                return ""
            how = "repointed"
        try:
            wait_until(
                lambda: self.follows_primary(server.name),
                timeout_s=follow_timeout_s,
                what=f"{server.name} to stream from {primary.name}",
                interval_s=0.1,
            )
        except PlatformError:
            return ""
        return how

    def _rewind_or_rebuild(self, server: PgServer, primary: PgServer, timeout_s: float) -> str:
        self.promotions.wait()  # a former primary's WAL is evidence until it is read
        try:
            server.rewind_from(primary, slot=server.application_name, timeout_s=timeout_s)
            return "rewound"
        except PlatformError as exc:
            self.last_rewind_error = str(exc)
        server.crash()
        server.remove_data()
        server.init_standby_from(primary, slot=server.application_name)
        server.start(timeout_s)
        return "rebuilt"

    def switchover(self, to: str | None = None, timeout_s: float = 60.0) -> str:
        """A planned switchover with no data loss: fast shutdown of the primary (its
        walsenders send everything, the shutdown checkpoint included), check the target
        received it, promote the target, then the old primary follows it as the
        synchronous standby and the DR replica is repointed. Returns the new primary."""
        with self.lock:
            old = self.primary
            target = self.server(to or self.partner_of(old.name) or "")
            if target is old:
                return old.name
            if not self.follows_primary(target.name):
                raise PlatformError(f"{target.name} does not stream from {old.name}")
            old.stop(fast=True, timeout_s=timeout_s)
            try:
                checkpoint = old.control_data().get("Latest checkpoint location", "")

                def received() -> bool:
                    rows = target.query(
                        "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", [checkpoint]
                    )
                    return bool(rows[0][0])

                wait_until(received, timeout_s=10, what=f"{target.name} to receive the shutdown")
            except PlatformError:
                old.start(timeout_s)  # nothing changed yet: the old primary serves again
                raise
            self.promote(target.name)
            self.repoint_replicas(target.name)
            self.rejoin(old.name, restore_sync=True, timeout_s=timeout_s)
            return target.name

    # -- regional DR ------------------------------------------------------------------------
    def promote_dr(self) -> str:
        """Promote the DR replica (the regional DR runbook's database step).

        The primary region is declared lost: whatever still runs of its members is
        SIGKILLed (fencing: a surviving old primary would be a second primary, and
        ``app_dsn`` lists it first) and they stay fenced -- ``up`` does not start them
        -- until ``fail_back`` brings them back as standbys. Idempotent."""
        with self.lock:
            server = self.server(self.dr_member)
            for name in self.ha_pair:
                self.server(name).crash()
            self.thaw_walsender()  # a frozen walsender died with its primary
            self.fenced = set(self.ha_pair)
            self._save_state()
            if server.state() == "running" and server.is_primary():
                self.primary_name = server.name
                self._save_state()
                return server.name
            self.promote(server.name)
            return server.name

    def fail_back(self, timeout_s: float = 120.0) -> None:
        """Return from a regional failover once the primary region's nodes are back:
        its members are rebuilt as standbys of the DR primary (``pg_rewind``, or a new
        ``pg_basebackup`` when that fails), then a planned switchover -- no data loss --
        makes the original primary the primary again, with its zone partner as the
        synchronous standby and the DR member as the asynchronous replica: the
        cluster's original shape. What the primary region had written but the DR
        region never received (the regional failover's RPO) is discarded."""
        with self.lock:
            dr = self.server(self.dr_member)
            if self.primary_name != self.dr_member:
                raise PlatformError(
                    f"no regional failover to fail back from: the primary is {self.primary_name}"
                )
            if dr.state() != "running" or not dr.is_primary():
                raise PlatformError(f"{dr.name} is not a running primary; cannot fail back")
            unavailable = {n: self._node_unavailable(n) for n in self.ha_pair}
            if any(unavailable.values()):
                down = ", ".join(f"{n} ({why})" for n, why in unavailable.items() if why)
                raise PlatformError(f"cannot fail back: node(s) still unavailable: {down}")
            home, partner = self.ha_pair
            self.thaw_walsender()
            region = [self.server(home), self.server(partner)]
            for server in region:
                dr.ensure_slot(server.application_name)
            self.last_fail_back = {}

            def resync(server: PgServer) -> None:
                self.last_fail_back[server.name] = self._resync_as_standby(server, dr, timeout_s)

            self._parallel(resync, region)
            self.switchover(home, timeout_s=timeout_s)
            primary = self.primary
            primary.set_synchronous_standby(partner)
            for member in (partner, self.dr_member):
                primary.ensure_slot(application_name(member))
                if not self.follows_primary(member):
                    self.rejoin(member, restore_sync=False, timeout_s=timeout_s)
            self._wait_replicating(timeout_s)
            self.fenced.clear()
            self._save_state()

    def _resync_as_standby(self, server: PgServer, primary: PgServer, timeout_s: float) -> str:
        """Make ``server`` (a fenced member, stopped or not) a standby streaming from
        ``primary``: rewind, else rebuild. Returns ``rewound`` | ``rebuilt``."""
        self.promotions.wait()  # a former primary's WAL is evidence until it is read
        server.thaw()
        if server.state() == "running":
            was_primary = True
            with contextlib.suppress(PlatformError):
                was_primary = server.is_primary()
            if was_primary:
                server.crash()  # a second primary: fence it, do not let it checkpoint
            else:
                server.stop(fast=True)  # "shut down in recovery": pg_rewind accepts it
        how = self._rewind_or_rebuild(server, primary, timeout_s)
        try:
            wait_until(
                lambda: self.follows_primary_of(server.name, primary),
                timeout_s=min(timeout_s, 20.0),
                what=f"{server.name} to stream from {primary.name}",
                interval_s=0.1,
            )
        except PlatformError:
            if how == "rebuilt":
                raise
            server.crash()
            server.remove_data()
            server.init_standby_from(primary, slot=server.application_name)
            server.start(timeout_s)
            how = "rebuilt"
            wait_until(
                lambda: self.follows_primary_of(server.name, primary),
                timeout_s=timeout_s,
                what=f"{server.name} to stream from {primary.name}",
                interval_s=0.1,
            )
        with contextlib.suppress(PlatformError):
            server.drop_slots()  # slots from when it was primary would pin WAL
        return how

    def follows_primary_of(self, name: str, primary: PgServer) -> bool:
        """``follows_primary`` against a given primary (``name`` streams from it on its
        current timeline)."""
        server = self.server(name)
        if server is primary or server.state() != "running":
            return False
        try:
            rows = server.query(
                "SELECT status, sender_port, received_tli FROM pg_stat_wal_receiver"
            )
            timeline = primary.timeline_id()
        except PlatformError:
            return False
        return bool(rows) and tuple(rows[0]) == ("streaming", primary.stream_port(name), timeline)

    def freeze_walsender(self, to: str | None = None, *, catch_up_s: float = 10.0) -> int:
        """SIGSTOP the primary's walsender for ``to`` (default: the DR replica): the
        replica stops receiving and lags, while everything else keeps running.

        First waits (up to ``catch_up_s``; 0 = do not wait) until the replica has
        received and flushed all WAL written so far, so that the freeze is a clean cut:
        a regional failover afterwards loses exactly the commits made after this
        returns. (Keep the time from freeze to failover short: nothing re-sends the WAL,
        but a WAL segment archived meanwhile -- a ``pg_switch_wal``, a base backup, a
        full 16 MB segment -- would reach the replica through ``restore_command``.)"""
        with self.lock:
            name = to or self.dr_member
            primary = self.primary
            app = application_name(name)
            if catch_up_s > 0:
                written = str(primary.query("SELECT pg_current_wal_lsn()")[0][0])

                def caught_up() -> bool:
                    rows = primary.query(
                        "SELECT flush_lsn >= %s::pg_lsn FROM pg_stat_replication"
                        " WHERE application_name = %s AND state = 'streaming'",
                        [written, app],
                    )
                    return bool(rows) and bool(rows[0][0])

                try:
                    wait_until(
                        caught_up,
                        timeout_s=catch_up_s,
                        what=f"{name} to receive the WAL before its walsender is frozen",
                        interval_s=0.05,
                    )
                except PlatformError as exc:
                    # say what the primary saw: not connected, not streaming, or behind
                    seen = primary.query(
                        "SELECT state, flush_lsn::text FROM pg_stat_replication"
                        " WHERE application_name = %s",
                        [app],
                    )
                    found = (
                        ", ".join(f"state {r[0]}, flushed up to {r[1]}" for r in seen)
                        or "no walsender for it at all"
                    )
                    raise PlatformError(
                        f"{exc}: {self.primary_name} wrote up to {written}; for {name} its"
                        f" pg_stat_replication shows {found}"
                    ) from None
            pids = primary.walsender_pids()
            pid = pids.get(app)
            if pid is None:
                raise PlatformError(f"{self.primary_name} has no walsender for {name}")
            psutil.Process(pid).send_signal(signal.SIGSTOP)
            self._frozen_walsenders[name] = pid
            wait_until(
                lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED,
                timeout_s=5,
                what=f"the walsender for {name} to stop",
            )
            return pid

    def thaw_walsender(self, to: str | None = None) -> None:
        """SIGCONT a walsender frozen by ``freeze_walsender``; idempotent."""
        with self.lock:
            names = [to] if to else list(self._frozen_walsenders)
            for name in names:
                pid = self._frozen_walsenders.pop(name, None)
                if pid is not None:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        psutil.Process(pid).send_signal(signal.SIGCONT)

    # -- backups and restore -------------------------------------------------------------------
    def take_base_backup(self) -> backups.BaseBackup:
        with self.lock:
            return backups.take_base_backup(self.primary, self.base_dir)

    def base_backups(self) -> list[backups.BaseBackup]:
        return backups.list_base_backups(self.base_dir)

    def restore_to_point_in_time(self, target_time: datetime, timeout_s: float = 120.0) -> PgServer:
        """A new server restored from the newest base backup older than ``target_time``
        plus the WAL archive up to ``target_time`` (a timezone-aware datetime, in the
        database's clock), promoted. Its data is the database as it was then; the
        cluster itself is untouched.

        Idempotent per point in time: the server is named for the point
        (``restored_name``), so asking again -- a runbook step finished by ``cleanup``
        after a killed run -- returns the server already restored (started if it was
        stopped) instead of making a second one; a restore that was cut short (its data
        partial) is redone into the same name."""
        if target_time.tzinfo is None:
            raise PlatformError("restore target time must be timezone-aware (e.g. UTC)")
        with self.lock:
            self._attach()
            name = restored_name(target_time)
            server = self.restored.get(name)
            if server is not None and name in self.restored_complete:
                if server.state() != "running":
                    server.thaw()
                    server.start(timeout_s)
                return server
            backups.make_target_reachable(self.primary, target_time, timeout_s)
            usable = [b for b in self.base_backups() if b.usable_from < target_time]
            if not usable:
                raise PlatformError(
                    f"no base backup older than {target_time.isoformat()} to restore from"
                )
            if server is not None:  # an earlier restore into it did not finish
                server.crash()
                server.remove_data()
            else:
                server = self._make_server(name, free_port())
                self.restored[name] = server
                self._save_state()
            try:
                backups.restore(usable[-1], server, target_time, timeout_s)
            except BaseException:
                server.crash()
                raise
            self.restored_complete.add(name)
            self._save_state()
            return server

    def drop_restored(self, name: str) -> None:
        """Stop a restored server and delete its data."""
        with self.lock:
            server = self.restored.pop(name)
            self.restored_complete.discard(name)
            server.stop(fast=True)
            server.remove_data()
            self._save_state()

    # -- adopting a restored server ------------------------------------------------------------
    def adopt_restored(self, name: str, timeout_s: float = 120.0) -> None:
        """Make the restored server ``name``'s data the HA cluster's again, writes made
        to it since the restore included, and return to the original shape.

        1. ``name`` is shut down cleanly (its data is final) and every member is
           stopped (their data is superseded);
        2. the original primary gets a copy of ``name``'s data folder and is promoted
           onto a **new timeline, higher than any timeline the archive knows**: the
           restored server chose its timeline id when the archive did not yet know
           about later failovers of the cluster, so a member may have used the same id
           since. The promotion runs without the archive (``restore_command`` off,
           ids up to the archive's highest reserved locally), so it reads the restored
           server's own history and can neither reuse nor be confused by an id in use;
           its history file is then published to the archive, and older WAL it
           carries is marked as archived (a same-named segment of another timeline
           may be there already: re-archiving it would block archiving for good);
        3. the zone partner (synchronous) and the DR member (asynchronous) are rebuilt
           from it with ``pg_basebackup``; a fresh base backup is taken (a later PITR
           restores from it and replays this timeline's archived WAL);
        4. ``name`` is dropped. On failure before step 4 ``name`` still holds its data.

        Ends any regional failover state (fencing) too: the shape is the original one."""
        with self.lock:
            self._attach()
            source = self.restored.get(name)
            if source is None:
                known = ", ".join(self.restored) or "none"
                raise PlatformError(f"no restored server {name!r} to adopt (restored: {known})")
            if not (source.data_dir / "global" / "pg_control").exists():
                raise PlatformError(f"restored server {name} has no data folder")
            unavailable = {n: self._node_unavailable(n) for n in self.specs}
            if any(unavailable.values()):
                down = ", ".join(f"{n} ({why})" for n, why in unavailable.items() if why)
                raise PlatformError(f"cannot adopt {name}: node(s) unavailable: {down}")
            home_name, partner_name = self.ha_pair
            home = self.server(home_name)
            others = [self.server(partner_name), self.server(self.dr_member)]
            self.thaw_walsender()
            source.stop(fast=True, timeout_s=timeout_s)
            if source.control_data().get("Database cluster state", "") != "shut down":
                source.start(timeout_s)  # it crashed: crash recovery, then a clean stop
                source.stop(fast=True, timeout_s=timeout_s)
            state = source.control_data().get("Database cluster state", "")
            if state != "shut down":
                raise PlatformError(f"{name} did not shut down cleanly (state: {state!r})")
            # fast shutdown: the members' archivers get to finish their queue first
            self._parallel(lambda s: s.stop(fast=True, timeout_s=timeout_s), self.members)
            ceiling = self._highest_timeline_in_use()
            home.remove_data()
            home.data_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source.data_dir, home.data_dir, symlinks=True)
            self.run_as.give(home.data_dir.parent)
            home.data_dir.chmod(0o700)
            timeline = self._promote_onto_new_timeline(home, ceiling, timeout_s)
            self.primary_name = home_name
            self.fenced.clear()
            self._save_state()
            for server in others:
                home.ensure_slot(server.application_name)

            def rebuild(server: PgServer) -> None:
                server.crash()
                server.remove_data()
                server.init_standby_from(home, slot=server.application_name)
                server.start(timeout_s)

            self._parallel(rebuild, others)
            home.set_synchronous_standby(partner_name)
            self._wait_replicating(timeout_s)
            if home.timeline_id() != timeline:
                raise PlatformError(f"{home_name} left timeline {timeline} unexpectedly")
            self.take_base_backup()
            self.drop_restored(name)

    def _highest_timeline_in_use(self) -> int:
        """The highest timeline id the archive, the base backups or a member knows."""
        found = [1]
        for entry in os.listdir(self.wal_dir) if self.wal_dir.is_dir() else []:
            match = _HISTORY.match(entry) or _SEGMENT.match(entry)
            if match:
                found.append(int(match.group(1), 16))
        found += [b.timeline for b in self.base_backups()]
        for server in [*self.members, *self.restored.values()]:
            with contextlib.suppress(PlatformError):
                found.append(server.timeline_id())
        return max(found)

    def _promote_onto_new_timeline(self, server: PgServer, ceiling: int, timeout_s: float) -> int:
        """Archive recovery of ``server``'s (cleanly shut down) data folder with no
        archive: it ends at once and picks the timeline after the newest one it finds
        history for in ``pg_wal`` -- where placeholders reserve every id up to
        ``ceiling``. Then the archive gets the new history file, the server its usual
        configuration, and it runs as a primary. Returns the new timeline id."""
        wal = server.data_dir / "pg_wal"
        current = int(server.control_data()["Latest checkpoint's TimeLineID"])
        own = wal / f"{current:08X}.history"
        own_text = own.read_text() if own.exists() else ""
        placeholders = []
        for tli in range(current + 1, ceiling + 1):
            path = wal / f"{tli:08X}.history"
            if not path.exists():
                path.write_text(own_text)  # only its existence is looked at
                placeholders.append(path)
        conf.edit_auto_conf(
            server.data_dir,
            {
                "primary_conninfo": None,
                "primary_slot_name": None,
                "synchronous_standby_names": None,
                "recovery_target_time": None,
                "recovery_target_action": None,
                "archive_mode": "off",  # no .partial / history archived under a used name
                "restore_command": "exit 1",  # archive recovery needs one; use pg_wal only
                "recovery_target_timeline": "current",
            },
        )
        (server.data_dir / "standby.signal").unlink(missing_ok=True)
        (server.data_dir / "recovery.signal").touch()
        self.run_as.give(server.data_dir)
        server.start(timeout_s)
        wait_until(server.is_primary, timeout_s=timeout_s, what=f"{server.name} to promote")
        timeline = server.timeline_id()
        server.stop(fast=True, timeout_s=timeout_s)
        for path in placeholders:
            path.unlink(missing_ok=True)
        if timeline <= ceiling:
            raise PlatformError(
                f"{server.name} chose timeline {timeline}, not above {ceiling} (in use)"
            )
        history = wal / f"{timeline:08X}.history"
        published = self.wal_dir / history.name
        if published.exists():
            raise PlatformError(f"the archive already has {history.name}")
        tmp = self.wal_dir / f".{history.name}.ledgerdrill-tmp"
        shutil.copyfile(history, tmp)
        tmp.chmod(0o644)
        self.run_as.give(tmp)
        tmp.replace(published)
        status = wal / "archive_status"
        prefix = f"{timeline:08X}"
        for entry in os.listdir(wal):
            if _SEGMENT.match(entry) and not entry.startswith(prefix):
                (status / f"{entry}.ready").unlink(missing_ok=True)
                (status / f"{entry}.done").touch()
        conf.edit_auto_conf(
            server.data_dir,
            {"archive_mode": None, "restore_command": None, "recovery_target_timeline": None},
        )
        self.run_as.give(server.data_dir)
        server.start(timeout_s)
        return timeline
