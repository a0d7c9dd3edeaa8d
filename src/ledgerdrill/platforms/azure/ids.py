"""Azure resource identifiers: parsing an AKS node's ``spec.providerID`` and the
allowlist check every resource passes before any call is made."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ledgerdrill.errors import PlatformError, SafetyViolation

# AKS writes the resource group lower-cased in providerID (the cloud provider does);
# ARM itself treats resource group names case-insensitively.
_PROVIDER_ID = re.compile(
    r"^azure:///subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<vmss>[^/]+)"
    r"/virtualMachines/(?P<id>[^/]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, order=True)
class ScaleSetRef:
    subscription_id: str
    resource_group: str  # always lower-cased: one spelling for comparisons and dict keys
    vmss: str


@dataclass(frozen=True, order=True)
class InstanceRef:
    scale_set: ScaleSetRef
    instance_id: str


def parse_provider_id(provider_id: str) -> InstanceRef:
    """``azure:///subscriptions/…/virtualMachineScaleSets/<vmss>/virtualMachines/<id>``.

    A node on a standalone VM (an availability-set pool) has a different providerID;
    it is refused rather than guessed."""
    match = _PROVIDER_ID.match(provider_id.strip())
    if match is None:
        raise PlatformError(
            f"providerID {provider_id!r} is not a VM scale-set instance "
            "(expected azure:///subscriptions/<sub>/resourceGroups/<rg>/providers/"
            "Microsoft.Compute/virtualMachineScaleSets/<vmss>/virtualMachines/<id>)"
        )
    return InstanceRef(
        ScaleSetRef(match["sub"].lower(), match["rg"].lower(), match["vmss"]), match["id"]
    )


def server_resource_id(subscription_id: str, resource_group: str, server: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{server}"
    )


@dataclass(frozen=True)
class Scope:
    """The subscription and resource groups a target allows; checked before every call."""

    subscription_id: str
    resource_groups: frozenset[str]

    @staticmethod
    def of(subscription_id: str, groups: Iterable[str]) -> Scope:
        return Scope(subscription_id.lower(), frozenset(g.lower() for g in groups))

    def check(self, subscription_id: str, resource_group: str, what: str) -> None:
        if subscription_id.lower() != self.subscription_id:
            raise SafetyViolation(
                f"{what}: subscription {subscription_id} is not the target's "
                f"({self.subscription_id}); refused before any call"
            )
        if resource_group.lower() not in self.resource_groups:
            allowed = ", ".join(sorted(self.resource_groups))
            raise SafetyViolation(
                f"{what}: resource group {resource_group!r} is not allowed "
                f"(allowed_resource_groups: {allowed}); refused before any call"
            )
