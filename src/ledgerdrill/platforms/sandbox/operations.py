"""Control-API operations for the certificate, the cache and the release.

Each is a thin call into a component plus an event for the timeline; the database's
operations live with ``DatabaseComponent`` (they need its HA controller).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ledgerdrill.platform_events import EventLog
from ledgerdrill.platforms.sandbox.api import Operation
from ledgerdrill.platforms.sandbox.erp_component import ErpComponent
from ledgerdrill.platforms.sandbox.redis_component import RedisComponent
from ledgerdrill.platforms.sandbox.traefik import TraefikComponent

# a release whose version ends in "+<defect>" carries that defect (e.g.
# "2026.12.0+posting-fails"): how a drill asks the sandbox for a bad release
DEFECTS = ("posting-fails", "slow-posting")


def split_release(version: str) -> tuple[str, str | None]:
    base, _, defect = version.partition("+")
    if defect and defect not in DEFECTS:
        raise ValueError(
            f"release {version!r}: unknown defect {defect!r} (known: {', '.join(DEFECTS)})"
        )
    if not base:
        raise ValueError(f"release {version!r}: no version before '+'")
    return version, defect or None


def edge_operations(
    edge: TraefikComponent, cache: RedisComponent, events: EventLog
) -> dict[str, Operation]:
    def served(_: dict[str, Any]) -> dict[str, Any]:
        return dataclasses.asdict(edge.served_certificate())

    def backup(_: dict[str, Any]) -> str:
        return edge.backup_certificate()

    def install(params: dict[str, Any]) -> str:
        variant = str(params["variant"])
        edge.install_certificate(variant)
        events.append("sandbox.certificate-installed", variant)
        return variant

    def restore(params: dict[str, Any]) -> str:
        ref = str(params["ref"])
        edge.restore_certificate(ref)
        events.append("sandbox.certificate-restored", ref)
        return ref

    def kill_cache(_: dict[str, Any]) -> str:
        before = cache.instance_id()
        cache.kill()
        events.append("sandbox.cache-killed", cache.node, {"instance": before})
        return before

    def restore_cache(_: dict[str, Any]) -> str:
        if not cache.alive():
            cache.start()  # the supervisor usually got there first
        return cache.instance_id()

    return {
        "cert/served": served,
        "cert/backup": backup,
        "cert/install": install,
        "cert/restore": restore,
        "cache/kill": kill_cache,
        "cache/restore": restore_cache,
        "cache/alive": lambda _p: cache.alive(),
        "cache/instance": lambda _p: cache.instance_id(),
    }


def release_operations(erp: ErpComponent, events: EventLog) -> dict[str, Operation]:
    def current(_: dict[str, Any]) -> dict[str, Any]:
        alive = sum(1 for r in erp.replicas if r.alive())
        return {"version": erp.release, "replicas": alive, "defect": erp.defect}

    def roll_out(params: dict[str, Any]) -> dict[str, Any]:
        version, defect = split_release(str(params["version"]))
        before = current({})
        events.append("sandbox.rollout-started", version)
        restarted = erp.roll_out(version, defect)
        events.append("sandbox.rollout-finished", version, {"replicas": restarted})
        return before

    def roll_back(params: dict[str, Any]) -> str:
        wanted = str(params["to_version"])
        events.append("sandbox.rollback-started", wanted)
        while erp.release != wanted and erp.releases:
            erp.roll_back()
        if erp.release != wanted:
            raise ValueError(f"release {wanted!r} was never running here")
        events.append("sandbox.rollback-finished", wanted)
        return erp.release

    return {
        "release/current": current,
        "release/roll-out": roll_out,
        "release/roll-back": roll_back,
    }
