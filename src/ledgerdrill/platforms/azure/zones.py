"""Zone names on the Azure backend: ``<region>-<number>``, e.g. ``westeurope-2``.

ARM reports a VM's zone as a bare number ("1", "2", "3"), but zone numbers are
scoped to a region *and a subscription*: zone 2 of westeurope and zone 2 of
northeurope are different data halls. A bare number is therefore ambiguous as soon
as a target has a dr cluster, and a zone outage named "2" would have crashed the DR
cluster's zone-2 nodes too. The backend names every zone the way AKS labels its
nodes (``topology.kubernetes.io/zone: westeurope-2``) and refuses a bare number.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledgerdrill.errors import FaultError


def zone_name(region: str, arm_zone: str) -> str:
    """``westeurope`` + ``2`` -> ``westeurope-2``; a non-zonal VM has no zone (``""``)."""
    if not arm_zone or arm_zone == "0":
        return ""
    return f"{region}-{arm_zone}"


def is_bare_zone(zone: str) -> bool:
    return zone.strip().isdigit()


def split_zone(zone: str, regions: Sequence[str]) -> tuple[str, str]:
    """``westeurope-2`` -> (``westeurope``, ``2``), for one of ``regions``; a bare number
    or an unknown region is a ``FaultError`` naming what is allowed."""
    examples = ", ".join(f"{r}-1" for r in regions)
    if is_bare_zone(zone):
        raise FaultError(
            f"zone {zone!r} is ambiguous: Azure zone numbers are per region "
            f"({zone} in one region is not {zone} in another); name it <region>-<number>, "
            f"e.g. {regions[0]}-{zone.strip()} (regions: {', '.join(regions)})"
        )
    region, _, number = zone.rpartition("-")
    if region not in regions or not number.isdigit():
        raise FaultError(
            f"zone {zone!r} is not <region>-<number> for a region of the target (e.g. {examples})"
        )
    return region, number
