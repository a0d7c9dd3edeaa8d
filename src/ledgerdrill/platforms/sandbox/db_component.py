"""The database part of the sandbox daemon: the PostgreSQL cluster, its HA controller,
and the database operations the control API offers to drills."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from ledgerdrill.platform_events import EventLog
from ledgerdrill.platforms.sandbox.links import ERP, LINKS_FILE, Links
from ledgerdrill.platforms.sandbox.nodes import DOWN, FROZEN
from ledgerdrill.platforms.sandbox.postgres import HaController, PgCluster
from ledgerdrill.platforms.sandbox.postgres.credentials import APP_DATABASE, APP_USER
from ledgerdrill.platforms.sandbox.services import Service
from ledgerdrill.platforms.sandbox.topology import Topology


class DatabaseComponent:
    name = "postgres"

    def __init__(
        self,
        state_dir: Path,
        topology: Topology,
        events: EventLog,
        *,
        detection_window_s: float,
        links: Links | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.cluster = PgCluster(state_dir, topology=topology)
        # the network between the ERP and the members and between the members
        # (``links.py``); None: every connection is direct
        self.links = links
        if links is not None:
            self.cluster.stream_route = lambda member, server: links.port(
                member, server.name, server.port
            )
        self.cluster.promotions.emit = lambda kind, name, attrs: events.append(
            f"db.{kind}", name, dict(attrs)
        )
        self.events = events
        self.ha = HaController(
            self.cluster,
            lambda kind, name, attrs: events.append(f"ha.{kind}", name, dict(attrs)),
            detection_window_s=detection_window_s,
            node_available=self._node_available,
        )
        # the database the ERP uses: the HA pair, or a restored server after a PITR runbook
        self.app_server: str | None = None

    def _node_available(self, node: str) -> bool:
        folder = self.state_dir / "nodes" / node
        return not (folder / DOWN).exists() and not (folder / FROZEN).exists()

    # -- Component ---------------------------------------------------------------------
    def start(self) -> None:
        if self.links is not None:
            # the standbys' primary_conninfo names their links: listening before they start
            self.links.restore(self.cluster.saved_ports())
        else:  # links of an earlier run with them on would mislead other processes
            (self.state_dir / LINKS_FILE).unlink(missing_ok=True)
        self.cluster.up()
        self.ha.start()

    def stop(self) -> None:
        self.ha.stop()
        self.cluster.down()
        if self.links is not None:
            self.links.stop()

    def services(self) -> list[Service]:
        return []  # the HA controller, not the supervisor, looks after database members

    def status(self) -> dict[str, Any]:
        topology = self.cluster.topology()
        return {
            "primary": topology.primary.name if topology.primary else None,
            "members": [
                {
                    "name": m.name,
                    "node": m.node,
                    "role": m.role,
                    "timeline": m.timeline,
                    "port": self.cluster.ports.get(m.name),
                }
                for m in topology.members
            ],
            "application_database": self.app_server or "ha-pair",
            "links": self.links.status() if self.links is not None else None,  # None: off
        }

    # -- what the ERP connects to -------------------------------------------------------
    def app_dsn(self) -> str:
        """The ERP's writer endpoint. Like a cloud's virtual endpoint it names every
        member -- the HA pair first, then the DR replica -- and
        ``target_session_attrs=read-write`` makes libpq pick whichever is primary: after
        an HA failover or a regional promotion the ERP reconnects without reconfiguring.
        After a point-in-time restore runbook it is the restored server alone."""
        if self.app_server is not None:
            return self.cluster.server_dsn(self.app_server)
        cluster = self.cluster
        members = [*cluster.ha_pair, cluster.dr_member]
        ports = [cluster.ports[m] for m in members]
        if self.links is not None:
            ports = [self.links.port(ERP, m, port) for m, port in zip(members, ports, strict=True)]
        return make_conninfo(
            cluster.dsn(),
            host=",".join("127.0.0.1" for _ in members),
            port=",".join(str(port) for port in ports),
        )

    # -- operations for the control API ---------------------------------------------------
    def operations(self, switch_application: Any) -> dict[str, Any]:
        """``switch_application(dsn)`` restarts the ERP replicas on another database."""
        cluster, ha = self.cluster, self.ha

        def topology(_: dict[str, Any]) -> list[dict[str, Any]]:
            return [m.__dict__ for m in cluster.topology().members]

        def crash_primary(_: dict[str, Any]) -> str:
            name = cluster.primary_name
            cluster.server(name).crash()
            self.events.append("sandbox.db-crashed", name)
            return name

        def switchover(params: dict[str, Any]) -> str:
            return ha.switchover(params.get("to"))

        def rejoin(params: dict[str, Any]) -> str:
            return ha.rejoin(str(params["member"]))

        def run_bad_change(params: dict[str, Any]) -> int:
            # as the application's own role, like a faulty migration would (autocommit)
            with cluster.primary.connect(APP_USER, APP_DATABASE) as conn:
                return int(conn.execute(str(params["sql"])).rowcount)

        def database_time(_: dict[str, Any]) -> str:
            rows = cluster.primary.query("SELECT now()")
            value = rows[0][0]
            return value.isoformat() if isinstance(value, datetime) else str(value)

        def restore(params: dict[str, Any]) -> str:
            point = datetime.fromisoformat(str(params["point_in_time"]))
            if point.tzinfo is None:
                raise ValueError(f"point_in_time {point.isoformat()} has no time zone")
            server = cluster.restore_to_point_in_time(point.astimezone(UTC))
            self.events.append(
                "sandbox.restored", server.name, {"point_in_time": point.isoformat()}
            )
            return server.name

        def switch_app(params: dict[str, Any]) -> str:
            member = str(params["member"])
            self.app_server = None if member in cluster.ha_pair else member
            switch_application(self.app_dsn())
            self.events.append("sandbox.application-database", member)
            return member

        def application(_: dict[str, Any]) -> str:
            return self.app_server or cluster.primary_name

        def adopt_restored(params: dict[str, Any]) -> str:
            # the restored server's data becomes the HA cluster's; the ERP goes back to it
            member = str(params["member"])
            primary = ha.adopt_restored(member)
            if self.app_server == member:
                self.app_server = None
                switch_application(self.app_dsn())
                self.events.append("sandbox.application-database", primary)
            return primary

        def restored(_: dict[str, Any]) -> list[str]:
            cluster._attach()
            return sorted(cluster.restored)

        def drop_restored(params: dict[str, Any]) -> str:
            member = str(params["member"])
            if member == self.app_server:
                raise ValueError(f"{member} is the ERP's database: adopt it, do not drop it")
            cluster.drop_restored(member)
            self.events.append("sandbox.restored-dropped", member)
            return member

        def promote_dr(_: dict[str, Any]) -> str:
            return ha.regional_failover()  # app_dsn names dr-db: the ERP reconnects there

        def fail_back(_: dict[str, Any]) -> str:
            return ha.fail_back()

        def freeze_walsender(params: dict[str, Any]) -> int:
            # replication to one member stops (it lags) while everything else runs on
            return cluster.freeze_walsender(params.get("to"))

        def thaw_walsender(params: dict[str, Any]) -> None:
            cluster.thaw_walsender(params.get("to"))

        return {
            "db/topology": topology,
            "db/crash-primary": crash_primary,
            "db/switchover": switchover,
            "db/rejoin": rejoin,
            "db/run-bad-change": run_bad_change,
            "db/time": database_time,
            "db/restore": restore,
            "db/switch-application": switch_app,
            "db/application": application,
            "db/adopt-restored": adopt_restored,
            "db/restored": restored,
            "db/drop-restored": drop_restored,
            "db/promote-dr": promote_dr,
            "db/fail-back": fail_back,
            "db/freeze-walsender": freeze_walsender,
            "db/thaw-walsender": thaw_walsender,
            **(self.links.operations() if self.links is not None else {}),
        }
