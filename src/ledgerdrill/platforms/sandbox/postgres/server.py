"""``PgServer``: one real PostgreSQL instance of the sandbox, known by its pid.

The postmaster is started directly (not through ``pg_ctl``, which daemonizes) as a
``ManagedProcess`` in a session of its own, with its pid file in its node's folder
(``<state>/nodes/<node>/postgres.pid``): node faults find it there, and ``crash()``
SIGKILLs it with all its children as a host crash would. It runs as ``nobody`` when
the harness is root; it listens on 127.0.0.1 only, on a port of its own, and has no
unix socket (long state paths would overflow ``sun_path``).

A note for the ERP team on synchronous replication (the "sync-replication trap"): a
COMMIT on the primary waits until the synchronous standby has flushed it. If that
wait is cancelled (``pg_cancel_backend``, ``statement_timeout`` does *not* apply, a
client-side cancel) the transaction is **already committed locally** and the client
is told success, with only a WARNING ("canceling wait for synchronous replication
... The transaction has already committed locally, but might not have been replicated
to the standby."). If the session is terminated instead, the client sees an error
although the row is committed. A failover at that moment can lose such a commit. A
client detects the first case with a psycopg notice handler (decide *inside* the
handler: psycopg frees the ``Diagnostic`` when the handler returns)::

    at_risk: list[str] = []
    conn.add_notice_handler(
        lambda diag: at_risk.append(diag.message_primary or "")
        if is_unreplicated_commit_notice(diag)
        else None
    )
    conn.commit()
    if at_risk:  # committed, but maybe not on the standby: record it as "at risk"
        ...

and must treat an error on COMMIT as "outcome unknown" (re-read, never blindly retry a
posting).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.postgres import conf, proctree
from ledgerdrill.platforms.sandbox.postgres.binaries import PgBinaries
from ledgerdrill.platforms.sandbox.postgres.credentials import (
    REPLICATION_USER,
    SUPERUSER,
    PgCredentials,
    write_initdb_password,
)
from ledgerdrill.platforms.sandbox.procs import (
    ManagedProcess,
    RunAs,
    port_open,
    read_pid,
    run,
    wait_until,
)
from ledgerdrill.processes import pid_alive

ServerState = Literal["running", "frozen", "stopped"]


def application_name(member: str) -> str:
    """The name a member streams under (``db-b`` -> ``db_b``): unquoted identifiers in
    ``synchronous_standby_names`` cannot contain a hyphen."""
    return member.replace("-", "_")


def is_unreplicated_commit_notice(diag: pg_errors.Diagnostic) -> bool:
    """True for the WARNING PostgreSQL sends when a COMMIT's wait for the synchronous
    standby was cancelled: the transaction *is* committed on the primary but maybe not
    on the standby, so a failover now could lose it. See this module's docstring.
    (Messages are matched in English: the sandbox's servers run with ``lc_messages=C``.)"""
    message = (diag.message_primary or "").lower()
    detail = (diag.message_detail or "").lower()
    return "wait for synchronous replication" in message or (
        "committed locally" in detail and "replicated" in detail
    )


@dataclass(frozen=True)
class ReplicationRow:
    """One row of the primary's ``pg_stat_replication``."""

    application_name: str
    state: str  # startup | catchup | streaming | backup | stopping
    sync_state: str  # async | potential | sync | quorum
    pid: int
    lag_bytes: int  # WAL written on the primary and not yet replayed on the standby
    replay_lag_s: float | None  # PostgreSQL's own measure; None when idle / unknown
    reply_age_s: float | None  # time since the standby last answered


class PgServer:
    """One PostgreSQL instance: data folder, port, process. Methods that act on the
    process (start, stop, crash, freeze) verify the effect before returning."""

    def __init__(
        self,
        name: str,
        node: str,
        *,
        data_dir: Path,
        port: int,
        binaries: PgBinaries,
        credentials: PgCredentials,
        passfile: Path,
        archive_dir: Path,
        log_path: Path,
        pid_path: Path,
        run_as: RunAs,
    ) -> None:
        self.name = name
        self.node = node
        self.data_dir = data_dir
        self.port = port
        self.binaries = binaries
        self.credentials = credentials
        self.passfile = passfile
        self.archive_dir = archive_dir
        self.run_as = run_as
        # the port a member's WAL stream from this server connects to: this server's own,
        # unless the sandbox daemon routes it through a network link (``links.py``)
        self.stream_route: Callable[[str, PgServer], int] | None = None
        self.process = ManagedProcess(
            f"postgres@{name}",
            [
                str(binaries.program("postgres")),
                "-D",
                str(data_dir),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                f"cluster_name={name}",
            ],
            log_path=log_path,
            pid_path=pid_path,
            env={"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC"},
            run_as=run_as,
        )

    def __repr__(self) -> str:
        return f"PgServer({self.name!r}, node={self.node!r}, port={self.port})"

    @property
    def application_name(self) -> str:
        return application_name(self.name)

    # -- connections -------------------------------------------------------------------
    def conninfo(
        self, user: str = SUPERUSER, dbname: str = "postgres", *, password: bool = True
    ) -> str:
        params: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": user,
            "dbname": dbname,
            "connect_timeout": 2,
            "application_name": "ledgerdrill",
        }
        if password:
            params["password"] = self.credentials.password(user)
        return make_conninfo(**params)

    def replication_conninfo(self, for_member: str) -> str:
        """What a standby puts in ``primary_conninfo`` to stream from this server: the
        password comes from the passfile, never from the (backed-up) config file."""
        return make_conninfo(
            host="127.0.0.1",
            port=self.port,
            user=REPLICATION_USER,
            passfile=str(self.passfile),
            application_name=application_name(for_member),
            connect_timeout=2,
        )

    def stream_port(self, for_member: str) -> int:
        """The port ``for_member``'s WAL stream from this server connects to."""
        return self.port if self.stream_route is None else self.stream_route(for_member, self)

    def streaming_conninfo(self, for_member: str) -> str:
        """``primary_conninfo`` for ``for_member``'s WAL stream: ``replication_conninfo``
        through the network link between the two when the daemon routes one."""
        conninfo = self.replication_conninfo(for_member)
        port = self.stream_port(for_member)
        return conninfo if port == self.port else make_conninfo(conninfo, port=port)

    @contextlib.contextmanager
    def connect(
        self, user: str = SUPERUSER, dbname: str = "postgres"
    ) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """An autocommit connection; a refused or failed one is a ``PlatformError``."""
        if self.state() == "frozen":
            raise PlatformError(f"database server {self.name} is frozen")
        try:
            conn = psycopg.connect(self.conninfo(user, dbname), autocommit=True)
        except psycopg.Error as exc:
            raise PlatformError(f"cannot connect to database server {self.name}: {exc}") from exc
        try:
            yield conn
        finally:
            conn.close()

    def query(
        self, sql: str, params: Sequence[object] | None = None, *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        with self.connect(dbname=dbname) as conn:
            try:
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except psycopg.Error as exc:
                raise PlatformError(f"{self.name}: {exc}") from exc

    # -- lifecycle ----------------------------------------------------------------------
    def run_tool(self, name: str, *args: str, timeout_s: float = 120.0) -> str:
        return run(
            [str(self.binaries.program(name)), *args],
            run_as=self.run_as,
            env={
                "PATH": "/usr/bin:/bin",
                "LANG": "C",
                "LC_ALL": "C",
                "PGPASSFILE": str(self.passfile),
            },
            timeout_s=timeout_s,
        )

    def _prepare_data_parent(self) -> None:
        if self.data_dir.exists():
            raise PlatformError(f"{self.data_dir} already exists; refusing to overwrite it")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.run_as.give(self.data_dir.parent)

    def init_primary(self) -> None:
        """``initdb`` a new cluster: checksums (for ``pg_rewind``), SCRAM everywhere, the
        superuser's password from a file that is deleted right after."""
        self._prepare_data_parent()
        pwfile = self.data_dir.parent / "initdb.pw"
        write_initdb_password(pwfile, self.credentials, self.run_as)
        try:
            self.run_tool(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--data-checksums",
                "--no-sync",  # a process crash keeps the page cache; initdb is 5x faster
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf.write_server_files(self.data_dir, self.archive_dir)
        self.run_as.give(self.data_dir)

    def init_standby_from(self, primary: PgServer, *, slot: str | None = None) -> None:
        """A new standby of ``primary`` (``pg_basebackup -R``): streams under its own
        application name (``db_b`` for ``db-b``), from ``slot`` when given."""
        self._prepare_data_parent()
        args = [
            "-D",
            str(self.data_dir),
            "-d",
            primary.replication_conninfo(self.name),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        ]
        if slot:
            args += ["-S", slot]
        self.run_tool("pg_basebackup", *args)
        self.configure_as_standby_of(primary, slot=slot)

    def configure_as_standby_of(self, primary: PgServer, *, slot: str | None) -> None:
        """Make a *stopped* server's data folder a standby of ``primary``: what
        ``pg_basebackup``/``pg_rewind`` copied from the source's auto.conf (its own
        sync-standby names, its own upstream) is replaced."""
        conf.edit_auto_conf(
            self.data_dir,
            {
                "primary_conninfo": primary.streaming_conninfo(self.name),
                "primary_slot_name": slot,
                "synchronous_standby_names": None,
                "recovery_target_time": None,
                "recovery_target_action": None,
            },
        )
        (self.data_dir / "standby.signal").touch()
        (self.data_dir / "recovery.signal").unlink(missing_ok=True)
        self.run_as.give(self.data_dir)

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the postmaster and wait until it accepts connections (a primary) or
        read-only connections (a standby: consistent, hot standby)."""
        if self.alive():
            return
        if port_open(self.port):
            raise PlatformError(
                f"port {self.port} of database server {self.name} is taken by another program"
            )
        self.process.pid_path.unlink(missing_ok=True)
        self.process.start()

        def ready() -> bool:
            if not self.process.alive():
                raise PlatformError(
                    f"database server {self.name} exited while starting:\n{self.process.log_tail()}"
                )
            return self.postmaster_status() in ("ready", "standby") and port_open(self.port)

        try:
            wait_until(ready, timeout_s=timeout_s, what=f"database server {self.name} to start")
        except PlatformError:
            self.crash()
            raise

    def postmaster_status(self) -> str:
        """The postmaster's own status line in ``postmaster.pid`` (starting, ready,
        standby, stopping): readable without a connection."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return ""
        return lines[7].strip() if len(lines) > 7 else ""

    @property
    def pid(self) -> int | None:
        return read_pid(self.process.pid_path)

    def alive(self) -> bool:
        pid = self.pid
        return pid is not None and pid_alive(pid)

    def state(self) -> ServerState:
        """From the postmaster itself: stopped (gone), frozen (SIGSTOPped: a hang) or
        running. One stopped child (a frozen walsender) does not make the server frozen."""
        pid = self.pid
        if pid is None or not pid_alive(pid):
            return "stopped"
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                return "frozen"
        return "running"

    def stop(self, fast: bool = True, timeout_s: float = 30.0) -> None:
        """Shut down cleanly: ``fast`` (SIGINT: roll back sessions, checkpoint, and let
        walsenders send everything) or smart (SIGTERM: wait for sessions to end). After
        the timeout, immediate shutdown (SIGQUIT) and then SIGKILL of the whole server."""
        pid = self.pid
        if pid is None or not pid_alive(pid):
            self.process.pid_path.unlink(missing_ok=True)
            return
        proctree.thaw_all(pid)  # a frozen server cannot shut down
        try:
            postmaster = psutil.Process(pid)
            postmaster.send_signal(signal.SIGINT if fast else signal.SIGTERM)
            postmaster.wait(timeout=timeout_s)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).send_signal(signal.SIGQUIT)
                psutil.Process(pid).wait(timeout=5)
            if pid_alive(pid):
                proctree.kill_all(pid)
        self.process.pid_path.unlink(missing_ok=True)

    def crash(self) -> None:
        """SIGKILL the postmaster and every child at once, as a host crash would."""
        pid = self.pid
        if pid is not None and pid_alive(pid):
            proctree.kill_all(pid)
        self.process.pid_path.unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP every process of the server: it hangs, connections stay open."""
        pid = self.pid
        if pid is None or not pid_alive(pid):
            raise PlatformError(f"database server {self.name} is not running")
        proctree.freeze_all(pid)  # returns once every live process of it is stopped

    def thaw(self) -> None:
        pid = self.pid
        if pid is not None and pid_alive(pid):
            proctree.thaw_all(pid)

    # -- roles -------------------------------------------------------------------------
    def is_primary(self) -> bool:
        return not bool(self.query("SELECT pg_is_in_recovery()")[0][0])

    def promote(self, timeout_s: float = 30.0) -> float:
        """Promote a standby; returns how long PostgreSQL took (seconds)."""
        started = time.monotonic()
        rows = self.query("SELECT pg_promote(true, %s)", [int(max(1, timeout_s))])
        if not rows or not rows[0][0]:
            raise PlatformError(f"{self.name} did not finish promotion in {timeout_s}s")
        wait_until(self.is_primary, timeout_s=timeout_s, what=f"{self.name} to leave recovery")
        return time.monotonic() - started

    def timeline_id(self) -> int:
        """The timeline the server writes (a primary) or receives/replays (a standby);
        read from the control file when the server is stopped."""
        if self.state() != "running":
            return self._control_timeline()
        rows = self.query(
            "SELECT CASE WHEN pg_is_in_recovery() THEN"
            " coalesce((SELECT nullif(received_tli, 0) FROM pg_stat_wal_receiver),"
            "          (SELECT timeline_id FROM pg_control_checkpoint()))"
            " ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
            " END"
        )
        return int(rows[0][0])

    def _control_timeline(self) -> int:
        if not (self.data_dir / "global" / "pg_control").exists():
            return 0
        try:
            out = self.run_tool("pg_controldata", "-D", str(self.data_dir), timeout_s=30)
        except PlatformError:
            return 0
        for line in out.splitlines():
            if line.startswith("Latest checkpoint's TimeLineID:"):
                return int(line.split(":")[1])
        return 0

    def control_data(self) -> dict[str, str]:
        out = self.run_tool("pg_controldata", "-D", str(self.data_dir), timeout_s=30)
        return {
            key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in out.splitlines())
        }

    # -- replication ---------------------------------------------------------------------
    def replication(self) -> list[ReplicationRow]:
        rows = self.query(
            "SELECT application_name, state, sync_state, pid,"
            " coalesce(pg_wal_lsn_diff("
            "   CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
            "        ELSE pg_current_wal_lsn() END, replay_lsn), -1)::bigint,"
            " extract(epoch FROM replay_lag)::float8,"
            " extract(epoch FROM now() - reply_time)::float8"
            " FROM pg_stat_replication ORDER BY application_name"
        )
        return [
            ReplicationRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), r[5], r[6])
            for r in rows
        ]

    def walsender_pids(self) -> dict[str, int]:
        """Walsender pid by the application name of the standby it serves."""
        return {row.application_name: row.pid for row in self.replication()}

    def ensure_slot(self, slot: str) -> None:
        """A physical replication slot on this (primary) server, kept across restarts, so
        the WAL a lagging standby still needs is never recycled."""
        self.query(
            "SELECT pg_create_physical_replication_slot(%s, true)"
            " WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
            [slot, slot],
        )

    def drop_slots(self, keep: Sequence[str] = ()) -> list[str]:
        """Drop inactive slots not in ``keep`` (a former primary's slots would pin WAL)."""
        rows = self.query(
            "SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE NOT active AND slot_type = 'physical' AND NOT (slot_name = ANY(%s))",
            [list(keep)],
        )
        return [str(r[0]) for r in rows]

    def set_synchronous_standby(self, standby: str | None) -> None:
        """``FIRST 1 (<standby>)`` (RPO 0) or empty (commits do not wait: degraded)."""
        value = f"FIRST 1 ({application_name(standby)})" if standby else ""
        self.query(f"ALTER SYSTEM SET synchronous_standby_names = {conf.quote(value)}")
        self.query("SELECT pg_reload_conf()")

    def synchronous_standby_names(self) -> str:
        return str(self.query("SHOW synchronous_standby_names")[0][0])

    def follow(self, primary: PgServer, *, slot: str | None) -> None:
        """Point a running standby at another primary (a reload restarts its WAL
        receiver; ``recovery_target_timeline=latest`` lets it cross the new timeline)."""
        self.query(
            "ALTER SYSTEM SET primary_conninfo = "
            + conf.quote(primary.streaming_conninfo(self.name))
        )
        if slot:
            self.query(f"ALTER SYSTEM SET primary_slot_name = {conf.quote(slot)}")
        else:
            self.query("ALTER SYSTEM RESET primary_slot_name")
        self.query("SELECT pg_reload_conf()")

    def rewind_from(self, source: PgServer, *, slot: str | None, timeout_s: float = 60.0) -> None:
        """Bring a former primary back as a standby of ``source``: stop it if it runs,
        ``pg_rewind`` it onto the source's timeline (``pg_rewind`` itself runs crash
        recovery first when the server was killed), make it a standby and start it."""
        self.stop(fast=True)
        self.run_tool(
            "pg_rewind",
            "-D",
            str(self.data_dir),
            "--source-server",
            make_conninfo(
                host="127.0.0.1",
                port=source.port,
                user=SUPERUSER,
                dbname="postgres",
                passfile=str(self.passfile),
                connect_timeout=2,
            ),
            "--no-sync",
            timeout_s=timeout_s,
        )
        self.configure_as_standby_of(source, slot=slot)
        # pg_rewind makes the target replay up to the source's WAL *insert* position
        # before it is consistent; on an idle source the WAL writer hibernates and that
        # tail would reach the standby only seconds later
        source.flush_wal()
        self.start(timeout_s=timeout_s)

    def flush_wal(self) -> None:
        """Write and flush a commit record now (locally: never waits for a standby)."""
        with self.connect() as conn:
            try:
                conn.execute("SET synchronous_commit = local")
                conn.execute("SELECT pg_current_xact_id()")
            except psycopg.Error as exc:
                raise PlatformError(f"{self.name}: {exc}") from exc

    def remove_data(self) -> None:
        """Delete this server's data folder (the server must be stopped)."""
        if self.alive():
            raise PlatformError(f"database server {self.name} still runs")
        shutil.rmtree(self.data_dir, ignore_errors=True)
