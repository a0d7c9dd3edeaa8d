"""The PostgreSQL Flexible Server half of the fake ARM: servers, HA restart with
failover, point-in-time and geo-restore, replica promotion, virtual endpoints.

Server payloads start from the published ``ServersGet`` example; a geo-restore
request is checked against ``ServersCreateGeoRestoreWithDataEncryptionEnabled``'s
shape (``createMode=GeoRestore``, ``sourceServerResourceId``, a location other than
the source's) and the ``ServerProperties`` model's rules: ``pointInTimeUTC`` "is
required when 'createMode' is 'PointInTimeRestore' or 'GeoRestore' or 'ReviveDropped'",
and ``network`` "is required to be passed only in case you want the server to be
Private access server" -- so a restore of a private-access (VNet) source without one is
refused. The error codes are ours; ARM's own wording for these refusals is not in the
published examples. There is no published virtual-endpoint example in the fixtures, so
that payload is modelled on the SDK's ``VirtualEndpoint`` /
``VirtualEndpointResourceProperties`` models (``endpointType``, ``members``,
``virtualEndpoints``), with the writer's host first and spelled ``.writer.``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerdrill.testing.fake_arm import Operation

Reply = tuple[int, dict[str, str], Any]


def arm_error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


_error = arm_error_body


class FakePostgres:
    servers: dict[tuple[str, str], dict[str, Any]]
    endpoints: dict[tuple[str, str, str], dict[str, Any]]
    lock: threading.RLock
    _server_template: dict[str, Any]

    if TYPE_CHECKING:  # provided by FakeArm

        def _start(self, kind: str, apply: Any) -> Operation | tuple[str, str]: ...
        def _accepted(self, op: Operation, async_header: bool) -> Reply: ...

    def add_server(
        self,
        sub: str,
        rg: str,
        name: str,
        *,
        zone: str = "1",
        standby_zone: str | None = "2",
        location: str = "westeurope",
        role: str = "Primary",
    ) -> None:
        body = copy.deepcopy(self._server_template)
        body["id"] = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"
        )
        body["name"] = name
        body["location"] = location
        props = body["properties"]
        props["fullyQualifiedDomainName"] = f"{name}.postgres.database.azure.com"
        props["availabilityZone"] = zone
        props["replicationRole"] = role
        props["replica"] = {"role": role, "capacity": 5}
        if standby_zone is None:
            props["highAvailability"] = {"mode": "Disabled", "state": "NotEnabled"}
        else:
            props["highAvailability"] = {
                "mode": "ZoneRedundant",
                "state": "Healthy",
                "standbyAvailabilityZone": standby_zone,
            }
        with self.lock:
            self.servers[(rg.lower(), name)] = body

    def _pg_restart(self, rg: str, name: str, body: Any) -> Reply:
        server = self.servers.get((rg.lower(), name))
        if server is None:
            return 404, {}, _error("ResourceNotFound", f"server {name} not found")
        ha = server["properties"]["highAvailability"]
        failover = bool(body.get("restartWithFailover"))
        if failover and (ha.get("mode") == "Disabled" or ha.get("state") != "Healthy"):
            return (
                400,
                {},
                _error(
                    "HAFailoverNotAllowed", "the server has no healthy high-availability standby"
                ),
            )
        if failover:
            ha["state"] = "FailingOver"
        server["properties"]["state"] = "Updating" if failover else "Restarting"

        def apply() -> None:
            props = server["properties"]
            if failover:
                props["availabilityZone"], ha["standbyAvailabilityZone"] = (
                    ha["standbyAvailabilityZone"],
                    props["availabilityZone"],
                )
                ha["state"] = "Healthy"
            props["state"] = "Ready"

        started = self._start("failover" if failover else "restart", apply)
        if isinstance(started, tuple):
            return 400, {}, _error(*started)
        return self._accepted(started, async_header=True)

    def _pg_create(self, sub: str, rg: str, name: str, body: Any) -> Reply:
        props = body.get("properties") or {}
        mode = props.get("createMode")
        if mode not in ("PointInTimeRestore", "GeoRestore"):
            return 400, {}, _error("InvalidParameter", f"the fake does not create {mode!r}")
        source_id = str(props.get("sourceServerResourceId", ""))
        source = next(
            (s for s in self.servers.values() if s["id"].lower() == source_id.lower()), None
        )
        if source is None:
            return 404, {}, _error("ResourceNotFound", f"source server {source_id} not found")
        location = body.get("location", "westeurope")
        if not props.get("pointInTimeUTC"):
            return (
                400,
                {},
                _error(
                    "InvalidParameterValue", f"pointInTimeUTC is required for createMode {mode}"
                ),
            )
        source_network = source["properties"].get("network") or {}
        if source_network.get("publicNetworkAccess") == "Disabled" and not (
            (props.get("network") or {}).get("delegatedSubnetResourceId")
        ):
            return (
                400,
                {},
                _error(
                    "InvalidParameterValue",
                    "the source server has private access: the restored server needs "
                    "network.delegatedSubnetResourceId (and a private DNS zone)",
                ),
            )
        if mode == "GeoRestore" and location == source["location"]:
            # ARM: a geo-restore goes to the paired region, not the source's own
            return (
                400,
                {},
                _error("GeoRestoreSameRegion", "geo-restore must target the paired region"),
            )
        self.add_server(
            sub,
            rg,
            name,
            zone=source["properties"]["availabilityZone"],
            standby_zone=None,
            location=location,
            role="None",
        )
        created = self.servers[(rg.lower(), name)]
        created["properties"]["state"] = "Provisioning"
        created["properties"]["sourceServerResourceId"] = source_id
        created["properties"]["pointInTimeUTC"] = props.get("pointInTimeUTC")
        created["properties"]["createMode"] = mode
        if props.get("network"):
            created["properties"]["network"] = {**props["network"],
                                                "publicNetworkAccess": "Disabled"}  # fmt: skip

        def apply() -> None:
            created["properties"]["state"] = "Ready"

        started = self._start("restore" if mode == "PointInTimeRestore" else "geo-restore", apply)
        if isinstance(started, tuple):
            del self.servers[(rg.lower(), name)]
            return 400, {}, _error(*started)
        if started.error is not None:
            # a failed restore leaves no usable server behind
            started.apply = lambda: None
            created["properties"]["state"] = "Disabled"
        return self._accepted(started, async_header=True)

    def _pg_update(self, rg: str, name: str, body: Any) -> Reply:
        server = self.servers.get((rg.lower(), name))
        if server is None:
            return 404, {}, _error("ResourceNotFound", f"server {name} not found")
        replica = ((body.get("properties") or {}).get("replica")) or {}
        mode = replica.get("promoteMode")
        if mode is None:
            return 400, {}, _error("InvalidParameter", "the fake supports only replica promotion")
        if server["properties"]["replicationRole"] not in ("AsyncReplica", "GeoAsyncReplica"):
            return 400, {}, _error("InvalidParameter", f"{name} is not a read replica")
        server["properties"]["state"] = "Updating"

        def apply() -> None:
            props = server["properties"]
            if mode == "Standalone":
                props["replicationRole"] = "None"
            else:  # Switchover: the roles swap with the current primary
                for other in self.servers.values():
                    if other["properties"]["replicationRole"] == "Primary":
                        other["properties"]["replicationRole"] = "GeoAsyncReplica"
                        other["properties"]["replica"]["role"] = "GeoAsyncReplica"
                props["replicationRole"] = "Primary"
                self._writer_follows(name)
            props["replica"]["role"] = props["replicationRole"]
            props["state"] = "Ready"

        started = self._start("promote", apply)
        if isinstance(started, tuple):
            return 400, {}, _error(*started)
        return self._accepted(started, async_header=True)

    # -- virtual endpoints ---------------------------------------------------------
    def add_virtual_endpoint(self, rg: str, server: str, name: str, members: Sequence[str]) -> None:
        """A ReadWrite endpoint pair on ``server``; ``members[0]`` is the writer's server."""
        sub = self.servers[(rg.lower(), server)]["id"].split("/")[2]
        body = {
            "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.DBforPostgreSQL/flexibleServers/{server}/virtualendpoints/{name}",
            "name": name,
            "type": "Microsoft.DBforPostgreSQL/flexibleServers/virtualEndpoints",
            "properties": {
                "endpointType": "ReadWrite",
                "members": list(members),
                "virtualEndpoints": [
                    f"{name}.writer.postgres.database.azure.com",
                    f"{name}.reader.postgres.database.azure.com",
                ],
            },
        }
        with self.lock:
            self.endpoints[(rg.lower(), server, name)] = body

    def writer_of(self, name: str) -> str:
        """The server the endpoint's writer host resolves to (tests read this)."""
        for (_, _, ve), body in self.endpoints.items():
            if ve == name:
                return str(body["properties"]["members"][0])
        raise KeyError(name)

    def _writer_follows(self, promoted: str) -> None:
        # Azure moves the writer endpoint to the new primary of a Switchover promotion
        for body in self.endpoints.values():
            members = body["properties"]["members"]
            if promoted in members:
                members.remove(promoted)
                members.insert(0, promoted)

    def _pg_endpoint(self, method: str, rg: str, server: str, name: str) -> Reply:
        body = self.endpoints.get((rg.lower(), server, name))
        if method != "GET":
            return 405, {}, _error("MethodNotAllowed", "drills only read virtual endpoints")
        if body is None:
            return 404, {}, _error("ResourceNotFound", f"virtual endpoint {name} not found")
        return 200, {}, copy.deepcopy(body)
