"""The sandbox's shape: regions, zones, and which programs run on which node.

The default shape: region ``primary`` with zones a, b, c -- an ERP node per
zone, database nodes in zones a and b, Redis in zone c -- and region ``dr`` with a
warm ERP node, the asynchronous database replica and its own (empty) session cache.
Traefik stands outside both regions (the global entry point) and is not a node any
fault may take.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeSpec:
    name: str
    zone: str
    region: str
    roles: tuple[str, ...]  # erp | db-primary | db-sync-standby | db-async-replica | cache


@dataclass(frozen=True)
class Topology:
    nodes: tuple[NodeSpec, ...]

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def zones(self, region: str | None = None) -> list[str]:
        return sorted({n.zone for n in self.nodes if region is None or n.region == region})

    def regions(self) -> list[str]:
        return sorted({n.region for n in self.nodes})

    def in_zone(self, zone: str) -> list[NodeSpec]:
        return [n for n in self.nodes if n.zone == zone]

    def with_role(self, role: str) -> list[NodeSpec]:
        return [n for n in self.nodes if role in n.roles]


def default_topology(nodes: Iterable[NodeSpec] | None = None) -> Topology:
    return Topology(
        tuple(nodes)
        if nodes is not None
        else (
            NodeSpec("erp-a", "a", "primary", ("erp",)),
            NodeSpec("erp-b", "b", "primary", ("erp",)),
            NodeSpec("erp-c", "c", "primary", ("erp",)),
            NodeSpec("db-a", "a", "primary", ("db-primary",)),
            NodeSpec("db-b", "b", "primary", ("db-sync-standby",)),
            NodeSpec("cache-c", "c", "primary", ("cache",)),
            NodeSpec("dr-erp", "dr-1", "dr", ("erp",)),
            NodeSpec("dr-db", "dr-1", "dr", ("db-async-replica",)),
            # the dr region's own session cache: sessions are not replicated across
            # regions, so after a regional failover users log in again (as they would)
            NodeSpec("dr-cache", "dr-1", "dr", ("cache",)),
        )
    )
