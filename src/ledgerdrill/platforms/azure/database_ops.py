"""DatabaseControl on PostgreSQL Flexible Server (HA failover, point-in-time restore,
the runbook's connection switch), plus geo-restore into the paired region."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

from ledgerdrill.errors import FaultError, UnsupportedCapability
from ledgerdrill.platforms.azure.lro import OperationRunner
from ledgerdrill.platforms.azure.postgres import FlexibleServers, ServerView
from ledgerdrill.platforms.azure.state import PlatformState
from ledgerdrill.platforms.base import DatabaseTopology
from ledgerdrill.targets import AzurePlatformSettings
from ledgerdrill.timeline import Clock

ConnectionSwitch = Callable[[str, str], None]  # (server name, fully qualified host name)
SqlRunner = Callable[[str], int]


class AzureDatabaseOps:
    kind: str
    settings: AzurePlatformSettings
    servers: FlexibleServers | None
    runner: OperationRunner
    clock: Clock
    state: PlatformState
    connection_switch: ConnectionSwitch | None
    sql_runner: SqlRunner | None

    if TYPE_CHECKING:  # provided by AzurePlatform

        def _record(self, kind: str, name: str, attributes: Mapping[str, Any]) -> None: ...

    def _db(self) -> FlexibleServers:
        if self.servers is None:
            raise UnsupportedCapability(self.kind, "DatabaseControl", "no database configured")
        return self.servers

    def database_topology(self) -> DatabaseTopology:
        return self._db().topology()

    def crash_primary(self) -> str:
        db = self._db()
        return db.failover(db.settings.failover_mode)

    def switchover(self, to_member: str | None = None) -> str:
        db = self._db()
        main = db.primary()
        if to_member is not None and to_member != main.standby_member:
            raise FaultError(
                f"a Flexible Server fails over only to its standby ({main.standby_member}), "
                f"not {to_member}"
            )
        db.failover(db.settings.switchover_mode)
        return db.primary().primary_member

    def settle(self) -> list[str]:
        """After a drill: Azure rebuilds the standby by itself (CreatingStandby,
        ReplicatingData, then Healthy); wait for it (``failover_timeout``) so the
        baseline comparison reads what Azure meant to leave. Not in time is a
        ``PlatformError`` naming the high-availability state."""
        if self.servers is None:
            return []
        db = self._db()
        self.runner.settle_pending(self.settings.failover_timeout)
        main = db.primary()
        if main.standby_member is None or main.ha_state == "Healthy":
            return []
        db.wait_standby(main.standby_member)
        return [f"standby {main.standby_member} rebuilt by Azure (high availability Healthy)"]

    def rejoin(self, member: str) -> None:
        db = self._db()
        self.runner.settle_pending(self.settings.failover_timeout)
        db.wait_standby(member)

    def run_bad_change(self, sql: str) -> int:
        if self.sql_runner is None:
            raise UnsupportedCapability(
                self.kind,
                "DatabaseControl.run_bad_change",
                "no SQL hook configured (pass sql_runner: a psycopg connection with an "
                "Entra ID token)",
            )
        return self.sql_runner(sql)

    def database_time_iso(self) -> str:
        # Flexible Server clocks are NTP-synchronised Azure time; without a SQL hook the
        # harness's UTC clock is the restore point (say so in the report's evidence)
        return self.clock.now().wall.astimezone(UTC).isoformat()

    def restore_to_point_in_time(self, point_in_time_iso: str) -> str:
        return self._db().restore(point_in_time_iso).name

    def geo_restore(self, point_in_time_iso: str | None = None) -> str:
        """Restore the primary's geo-redundant backup into the paired (dr) region as a new
        server (``createMode=GeoRestore``); returns its name. The runbook then switches
        the ERP to it with ``switch_application_database``."""
        dr = self.settings.dr_cluster
        if dr is None:
            raise UnsupportedCapability(
                self.kind, "geo-restore", "the target names no dr_cluster (the paired region)"
            )
        return self._db().geo_restore(dr.region, point_in_time_iso).name

    def _view_of(self, member: str) -> ServerView:
        db = self._db()
        server = member.split("/", 1)[0]
        for group in db.candidate_groups(server):
            found = db.find(group, server)
            if found is not None:
                return found
        raise FaultError(f"no Flexible Server {server!r} in the target's resource groups")

    def switch_application_database(self, member: str) -> None:
        view = self._view_of(member)
        # through a virtual endpoint the ERP keeps its host: the writer endpoint follows
        # the server it names; a server outside the endpoint (a restore) has its own
        host = self._db().writer_host_for(view.name) or view.fqdn
        if self.connection_switch is not None:
            self.connection_switch(view.name, host)
        self.state.save({"application_database": view.name})
        self._record(
            "runbook.step", "switch-application-database", {"server": view.name, "host": host}
        )

    def application_database(self) -> str:
        value = self.state.load().get("application_database")
        return str(value) if value else self._db().settings.server
