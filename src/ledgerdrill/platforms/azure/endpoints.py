"""Virtual endpoints of a Flexible Server (``client.virtual_endpoints``).

A virtual endpoint is a pair of DNS names on the primary server: the writer
(``<name>.writer.postgres.database.azure.com``) always points at the replication
set's primary, the reader at a replica. When the target names one, the ERP connects
to the writer name, so a Switchover promotion needs no connection change: Azure moves
the writer to the promoted server. The backend never edits the endpoint during a
drill (that would change the estate under test); it reads it to check, before a
promotion, that the server to promote is a member, and after, that the writer follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.azure.ids import Scope
from ledgerdrill.platforms.azure.lro import arm_error

# the SDK method a drill uses, for the least-privilege role check (read only)
READ = "postgres.virtual_endpoints.get"


@dataclass(frozen=True)
class EndpointView:
    name: str
    endpoint_type: str
    members: tuple[str, ...]
    hosts: tuple[str, ...]

    @property
    def writer_host(self) -> str:
        """The writer's host name (ARM lists the writer first and spells it ``.writer.``)."""
        for host in self.hosts:
            if ".writer." in host:
                return host
        return self.hosts[0] if self.hosts else ""


class VirtualEndpoints:
    def __init__(
        self,
        client: Any,
        scope: Scope,
        *,
        subscription_id: str,
        resource_group: str,
        server: str,
    ) -> None:
        self.client = client
        self.scope = scope
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.server = server  # the endpoint lives on the (original) primary server

    def read(self, name: str) -> EndpointView:
        self.scope.check(self.subscription_id, self.resource_group, f"virtual endpoint {name}")
        try:
            found = self.client.virtual_endpoints.get(self.resource_group, self.server, name)
        except AzureError as exc:
            raise arm_error(exc, f"reading virtual endpoint {name} of {self.server}") from exc
        props = found.properties
        return EndpointView(
            name=str(found.name or name),
            endpoint_type=str(getattr(props, "endpoint_type", "") or ""),
            members=tuple(str(m) for m in (getattr(props, "members", None) or ())),
            hosts=tuple(str(h) for h in (getattr(props, "virtual_endpoints", None) or ())),
        )

    def require_member(self, name: str, server: str) -> EndpointView:
        """Before a promotion: the writer can only follow a server in the endpoint."""
        view = self.read(name)
        if server not in view.members:
            raise PlatformError(
                f"virtual endpoint {name} does not include {server} "
                f"(members: {', '.join(view.members) or 'none'}): its writer cannot follow "
                "a promotion of it; add the replica to the endpoint before the game day"
            )
        return view
