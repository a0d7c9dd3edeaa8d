"""PostgreSQL Flexible Server: HA failover, point-in-time restore, DR replica promotion.

Members are named ``<server>/zone-<n>``: a zone-redundant server keeps its name when
it fails over, only the zone of its primary changes, so naming members by zone is
what makes "the old primary is no longer primary" observable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.mgmt.postgresqlflexibleservers.models import (
    Network,
    Replica,
    RestartParameter,
    Server,
    ServerForPatch,
    ServerProperties,
    ServerPropertiesForPatch,
)

from ledgerdrill.errors import FaultError, PlatformError
from ledgerdrill.platforms.azure.endpoints import EndpointView, VirtualEndpoints
from ledgerdrill.platforms.azure.ids import Scope, server_resource_id
from ledgerdrill.platforms.azure.lro import OperationRunner, arm_error
from ledgerdrill.platforms.azure.zones import zone_name
from ledgerdrill.platforms.base import DatabaseMember, DatabaseTopology
from ledgerdrill.targets import AzureDatabaseSettings
from ledgerdrill.timeline import Clock

REPLICA_ROLES = frozenset({"AsyncReplica", "GeoAsyncReplica"})
STANDBY_REBUILDING = frozenset({"CreatingStandby", "ReplicatingData", "RecreatingStandby"})


def _text(value: Any) -> str:
    """SDK enums are ``str`` subclasses whose ``str()`` is ``Class.MEMBER``: use the value."""
    if value is None:
        return ""
    return str(value.value) if isinstance(value, Enum) else str(value)


@dataclass(frozen=True)
class ServerView:
    """What the backend reads from a server (the SDK model, flattened)."""

    name: str
    state: str
    zone: str
    ha_mode: str
    ha_state: str
    standby_zone: str
    replication_role: str
    location: str
    fqdn: str
    # private access (VNet integration): a restore of it needs a subnet of its own
    private_access: bool = False

    @staticmethod
    def of(server: Any) -> ServerView:
        props = server.properties
        ha = props.high_availability if props is not None else None
        return ServerView(
            name=_text(server.name),
            state=_text(getattr(props, "state", None)),
            zone=_text(getattr(props, "availability_zone", None)),
            ha_mode=_text(getattr(ha, "mode", None)) or "Disabled",
            ha_state=_text(getattr(ha, "state", None)) or "NotEnabled",
            standby_zone=_text(getattr(ha, "standby_availability_zone", None)),
            replication_role=_text(getattr(props, "replication_role", None)) or "None",
            location=_text(server.location),
            fqdn=_text(getattr(props, "fully_qualified_domain_name", None)),
            private_access=_private(getattr(props, "network", None)),
        )

    @property
    def primary_member(self) -> str:
        return f"{self.name}/zone-{self.zone}"

    def host_in(self, zone: str) -> str:
        return f"{self.name}@{zone_name(self.location, zone) or self.location}"

    @property
    def standby_member(self) -> str | None:
        if self.ha_mode == "Disabled" or not self.standby_zone:
            return None
        return f"{self.name}/zone-{self.standby_zone}"


class FlexibleServers:
    def __init__(
        self,
        client: Any,
        runner: OperationRunner,
        scope: Scope,
        *,
        subscription_id: str,
        settings: AzureDatabaseSettings,
        clock: Clock,
        failover_timeout_s: float,
        restore_timeout_s: float,
        poll_s: float,
    ) -> None:
        self.client = client
        self.runner = runner
        self.scope = scope
        self.subscription_id = subscription_id
        self.settings = settings
        self.clock = clock
        self.failover_timeout_s = failover_timeout_s
        self.restore_timeout_s = restore_timeout_s
        self.poll_s = poll_s
        self.endpoints = VirtualEndpoints(
            client,
            scope,
            subscription_id=subscription_id,
            resource_group=settings.resource_group,
            server=settings.server,
        )

    # -- reading -------------------------------------------------------------------
    def view(self, resource_group: str, name: str) -> ServerView:
        self.scope.check(self.subscription_id, resource_group, f"server {name}")
        try:
            return ServerView.of(self.client.servers.get(resource_group, name))
        except AzureError as exc:
            raise arm_error(exc, f"reading server {name}") from exc

    def primary(self) -> ServerView:
        return self.view(self.settings.resource_group, self.settings.server)

    @property
    def replica_group(self) -> str:
        return self.settings.dr_replica_resource_group or self.settings.resource_group

    def replica(self) -> ServerView | None:
        if not self.settings.dr_replica:
            return None
        return self.view(self.replica_group, self.settings.dr_replica)

    def topology(self) -> DatabaseTopology:
        main = self.primary()
        if main.replication_role in REPLICA_ROLES:
            main_role = "async-replica"  # after a DR switchover the replica is primary
        elif main.ha_state == "FailingOver" or main.state not in ("Ready", "Updating"):
            main_role = "stopped"
        else:
            main_role = "primary"
        # a member's "node" is the server's host in its region-scoped zone (erp-pg@westeurope-1):
        # what the allowlist's nodes patterns and the plan name for a database crash
        members = [DatabaseMember(main.primary_member, main.host_in(main.zone), main_role)]
        standby = main.standby_member
        if standby is not None:
            # ARM's highAvailability.state is "Healthy" only while the standby is in
            # synchronous replication with the primary; rebuilding it after a failover
            # (CreatingStandby, ReplicatingData) it serves no commit
            healthy = main.ha_state == "Healthy"
            role = "sync-standby" if healthy else "stopped"
            members.append(
                DatabaseMember(
                    standby, main.host_in(main.standby_zone), role, streaming=healthy or None
                )
            )
        replica = self.replica()
        if replica is not None:
            role = "async-replica" if replica.replication_role in REPLICA_ROLES else "primary"
            members.append(DatabaseMember(replica.name, replica.host_in(replica.zone), role))
        return DatabaseTopology(tuple(members))

    # -- HA failover ---------------------------------------------------------------
    def failover(self, failover_mode: str) -> str:
        """Restart with failover; returns the member that was primary. ARM refuses it
        (``HAFailoverNotAllowed`` or similar) when the server has no healthy standby."""
        main = self.primary()
        self.runner.run(
            "postgres.servers.begin_restart",
            [self.settings.resource_group, self.settings.server],
            f"{failover_mode} of server {self.settings.server}",
            self.failover_timeout_s,
            parameters=RestartParameter(restart_with_failover=True, failover_mode=failover_mode),
        )
        return main.primary_member

    def wait_standby(self, member: str) -> None:
        """Azure rebuilds the old primary as the standby by itself: wait until it is one."""
        start = self.clock.now()
        while True:
            main = self.primary()
            if main.standby_member == member and main.ha_state == "Healthy":
                return
            if main.primary_member == member and main.ha_state == "Healthy":
                return  # it is the primary again (failed back): nothing to rejoin
            if self.clock.now().seconds_since(start) > self.failover_timeout_s:
                raise PlatformError(
                    f"{member} is not a healthy standby after {self.failover_timeout_s:g} s "
                    f"(high availability state {main.ha_state}, server state {main.state})"
                )
            self.clock.sleep(self.poll_s)

    # -- point-in-time restore -----------------------------------------------------
    def restore_name(self, point_in_time: datetime) -> str:
        # derived from the restore point, not from now: a resumed restore finds its server
        stamp = point_in_time.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        return self.settings.restore_server_template.format(
            server=self.settings.server, stamp=stamp
        )

    def restore(self, point_in_time_iso: str) -> ServerView:
        point = _parse_point(point_in_time_iso)
        name = self.restore_name(point)
        group = self.settings.resource_group
        self.scope.check(self.subscription_id, group, f"restore server {name}")
        existing = self._find(group, name)
        if existing is not None and existing.state == "Ready":
            return existing  # an earlier (interrupted) run already restored it
        source = self.primary()
        self.runner.run(
            "postgres.servers.begin_create_or_update",
            [group, name],
            f"point-in-time restore of {self.settings.server} to {point.isoformat()} as {name}",
            self.restore_timeout_s,
            parameters=Server(
                location=source.location,
                properties=ServerProperties(
                    create_mode="PointInTimeRestore",
                    source_server_resource_id=server_resource_id(
                        self.subscription_id, group, self.settings.server
                    ),
                    point_in_time_utc=point,
                ),
            ),
        )
        return self.view(group, name)

    # -- geo-restore ---------------------------------------------------------------
    @property
    def geo_group(self) -> str:
        return (
            self.settings.geo_restore_resource_group
            or self.settings.dr_replica_resource_group
            or self.settings.resource_group
        )

    def geo_restore(self, paired_region: str, point_in_time_iso: str | None) -> ServerView:
        """A new server in ``paired_region`` from the primary's geo-redundant backup
        (``createMode=GeoRestore``); the name is stamped with the point (or "latest") so
        a resumed run finds the server it already made.

        ARM requires ``pointInTimeUTC`` for a geo-restore ("required when 'createMode' is
        'PointInTimeRestore' or 'GeoRestore' or 'ReviveDropped'": the ServerProperties
        model docs); without a point we send the current time, as the Azure CLI does,
        which restores the latest geo-backup. A private-access (VNet) source needs the
        new server's ``network`` too: a delegated subnet and private DNS zone in the
        paired region, from the target file."""
        point = _parse_point(point_in_time_iso) if point_in_time_iso else None
        stamp = point.strftime("%Y%m%d%H%M%S") if point else "latest"
        name = self.settings.geo_restore_server_template.format(
            server=self.settings.server, stamp=stamp
        )
        group = self.geo_group
        self.scope.check(self.subscription_id, group, f"geo-restore server {name}")
        existing = self.find(group, name)
        if existing is not None and existing.state == "Ready":
            return existing
        properties = ServerProperties(
            create_mode="GeoRestore",
            source_server_resource_id=server_resource_id(
                self.subscription_id, self.settings.resource_group, self.settings.server
            ),
            point_in_time_utc=point or datetime.now(UTC),
        )
        if self._source_is_private():
            properties.network = self._geo_network()
        self.runner.run(
            "postgres.servers.begin_create_or_update",
            [group, name],
            f"geo-restore of {self.settings.server} into {paired_region} as {name}",
            self.restore_timeout_s,
            parameters=Server(location=paired_region, properties=properties),
        )
        return self.view(group, name)

    def _source_is_private(self) -> bool:
        """Read from the source server (ARM answers for it even while its region is
        down); if it cannot be read, a configured subnet says the estate is private."""
        try:
            return self.primary().private_access
        except PlatformError:
            return bool(self.settings.geo_restore_subnet_id)

    def _geo_network(self) -> Network:
        subnet = self.settings.geo_restore_subnet_id
        zone = self.settings.geo_restore_private_dns_zone_id
        if not subnet or not zone:
            raise PlatformError(
                f"geo-restore of {self.settings.server}: it has private access (VNet), so "
                "the restored server needs a delegated subnet and a private DNS zone in the "
                "paired region: set database.geo_restore_subnet_id and "
                "database.geo_restore_private_dns_zone_id in the target file"
            )
        return Network(delegated_subnet_resource_id=subnet, private_dns_zone_arm_resource_id=zone)

    def candidate_groups(self, server: str) -> list[str]:
        """Where a server of this estate may live (primary, replica, geo-restore groups)."""
        groups = [self.settings.resource_group]
        if server == self.settings.dr_replica:
            groups.insert(0, self.replica_group)
        groups.append(self.geo_group)
        return list(dict.fromkeys(groups))

    # -- virtual endpoints ---------------------------------------------------------
    def endpoint(self) -> EndpointView | None:
        if not self.settings.virtual_endpoint:
            return None
        return self.endpoints.read(self.settings.virtual_endpoint)

    def writer_host_for(self, server: str) -> str | None:
        """The writer endpoint's host when ``server`` is the writable member of the
        target's virtual endpoint; ``None`` without one or for a server outside it."""
        found = self.endpoint()
        if found is None or server not in found.members:
            return None
        return found.writer_host

    def find(self, group: str, name: str) -> ServerView | None:
        return self._find(group, name)

    def _find(self, group: str, name: str) -> ServerView | None:
        try:
            return ServerView.of(self.client.servers.get(group, name))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise arm_error(exc, f"reading server {name}") from exc

    # -- DR promotion --------------------------------------------------------------
    def promote(self, server: str, resource_group: str, mode: str, option: str) -> None:
        self.scope.check(self.subscription_id, resource_group, f"promote {server}")
        self.runner.run(
            "postgres.servers.begin_update",
            [resource_group, server],
            f"promote {server} ({mode}, {option})",
            self.failover_timeout_s,
            parameters=ServerForPatch(
                properties=ServerPropertiesForPatch(
                    replica=Replica(promote_mode=mode, promote_option=option)
                )
            ),
        )


def _parse_point(point_in_time_iso: str) -> datetime:
    try:
        point = datetime.fromisoformat(point_in_time_iso.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FaultError(f"restore point {point_in_time_iso!r} is not ISO 8601") from exc
    return point if point.tzinfo is not None else point.replace(tzinfo=UTC)


def _private(network: Any) -> bool:
    """VNet-integrated ("private access"): public access off or a delegated subnet."""
    if network is None:
        return False
    public = str(getattr(network, "public_network_access", "") or "")
    return public == "Disabled" or bool(getattr(network, "delegated_subnet_resource_id", None))
