"""The platform's shape: what "left as it was found" is checked against.

At the steady-state gate a drill reads the shape through the platform's capability
protocols (never through its own bookkeeping): the nodes and their state, the regions,
the database members with their roles and whether each standby streams, the database
the ERP uses, the certificate served on the wire, the release deployed, the cache, and
whatever extra facts the backend adds (``Platform.baseline_facts``: restored servers
left running, say). After the scenario's revert, and at the end of ``ledgerdrill
cleanup``, it is read again and compared.

The comparison allows one documented equivalence and nothing else: **after a failover
the database roles may have moved** (another member is primary, the old primary is now
a standby), but there must again be exactly one primary and at least as many streaming
synchronous standbys and streaming asynchronous replicas as before, no member that ran
before may be stopped, and the ERP must use the same database as before -- the HA
primary (whichever member that now is) or the same named endpoint. Everything else
must read back exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledgerdrill.platforms.base import (
    CacheControl,
    CertificateControl,
    DatabaseControl,
    NodeControl,
    Platform,
    RegionControl,
    ReleaseControl,
)

# the application database is the HA cluster's primary (whichever member it is)
HA_PRIMARY = "the HA primary"


@dataclass(frozen=True)
class MemberShape:
    name: str
    role: str  # primary | sync-standby | async-replica | stopped
    streaming: bool | None = None  # None: the backend cannot tell


@dataclass(frozen=True)
class PlatformShape:
    nodes: Mapping[str, str] = field(default_factory=dict)
    regions: Mapping[str, str] = field(default_factory=dict)
    database: tuple[MemberShape, ...] | None = None
    application_database: str | None = None
    certificate: str | None = None
    release: str | None = None
    cache: str | None = None  # "alive" | "down"
    facts: Mapping[str, str] = field(default_factory=dict)
    # a part that could not be read, with why: never silently "as before"
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": dict(self.nodes),
            "regions": dict(self.regions),
            "database": None
            if self.database is None
            else [
                {"name": m.name, "role": m.role, "streaming": m.streaming} for m in self.database
            ],
            "application_database": self.application_database,
            "certificate": self.certificate,
            "release": self.release,
            "cache": self.cache,
            "facts": dict(self.facts),
            "unreadable": dict(self.unreadable),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformShape:
        database = data.get("database")
        return cls(
            nodes={str(k): str(v) for k, v in dict(data.get("nodes") or {}).items()},
            regions={str(k): str(v) for k, v in dict(data.get("regions") or {}).items()},
            database=None
            if database is None
            else tuple(
                MemberShape(str(m["name"]), str(m["role"]), m.get("streaming")) for m in database
            ),
            application_database=data.get("application_database"),
            certificate=data.get("certificate"),
            release=data.get("release"),
            cache=data.get("cache"),
            facts={str(k): str(v) for k, v in dict(data.get("facts") or {}).items()},
            unreadable={str(k): str(v) for k, v in dict(data.get("unreadable") or {}).items()},
        )

    def summary(self) -> str:
        """One line for people: the shape as it reads."""
        parts = []
        if self.nodes:
            running = sum(1 for s in self.nodes.values() if s == "running")
            parts.append(f"{running}/{len(self.nodes)} nodes running")
        if self.database is not None:
            parts.append(
                "database "
                + ", ".join(
                    f"{m.name} {m.role}" + (" (not streaming)" if m.streaming is False else "")
                    for m in self.database
                )
            )
        if self.application_database:
            parts.append(f"ERP on {self.application_database}")
        if self.release:
            parts.append(f"release {self.release}")
        if self.cache:
            parts.append(f"cache {self.cache}")
        parts += [f"{k}: {v}" for k, v in self.facts.items()]
        parts += [f"{k} unreadable" for k in self.unreadable]
        return "; ".join(parts)


Reader = Callable[[Callable[[], Any], str], Any]


def _direct(call: Callable[[], Any], _what: str) -> Any:
    return call()


def read_shape(platform: Platform, *, call: Reader = _direct) -> PlatformShape:
    """Read the shape through every capability the platform offers. ``call`` runs each
    read (a bound against a hung API); a read that fails is recorded as unreadable."""
    unreadable: dict[str, str] = {}

    def read(part: str, fn: Callable[[], Any]) -> Any:
        try:
            return call(fn, f"reading the platform's {part}")
        except Exception as exc:  # a part that cannot be read is a difference, not a crash
            unreadable[part] = f"{type(exc).__name__}: {exc}"
            return None

    nodes: dict[str, str] = {}
    if platform.supports(NodeControl):
        found = read("nodes", lambda: platform.capability(NodeControl).nodes())
        nodes = {n.name: str(n.state) for n in found or [] if not n.protected}
    regions: dict[str, str] = {}
    if platform.supports(RegionControl):
        control = platform.capability(RegionControl)
        found_regions = read("regions", lambda: {r: str(control.region_state(r))
                                                 for r in control.regions()})  # fmt: skip
        regions = dict(found_regions or {})
    database: tuple[MemberShape, ...] | None = None
    app: str | None = None
    if platform.supports(DatabaseControl):
        db = platform.capability(DatabaseControl)
        topology = read("database", db.database_topology)
        if topology is not None:
            database = tuple(MemberShape(m.name, m.role, m.streaming) for m in topology.members)
            named = read("application database", db.application_database)
            if named is not None:
                primary = topology.primary
                app = HA_PRIMARY if primary is not None and named == primary.name else str(named)
    certificate = release = cache = None
    if platform.supports(CertificateControl):
        served = read("certificate", platform.capability(CertificateControl).served_certificate)
        certificate = served.fingerprint_sha256 if served is not None else None
    if platform.supports(ReleaseControl):
        current = read("release", platform.capability(ReleaseControl).current_release)
        release = current.version if current is not None else None
    if platform.supports(CacheControl):
        alive = read("cache", platform.capability(CacheControl).cache_alive)
        cache = None if alive is None else ("alive" if alive else "down")
    facts = read("backend facts", platform.baseline_facts) or {}
    return PlatformShape(
        nodes=nodes,
        regions=regions,
        database=database,
        application_database=app,
        certificate=certificate,
        release=release,
        cache=cache,
        facts={str(k): str(v) for k, v in dict(facts).items()},
        unreadable=unreadable,
    )


def _count(members: tuple[MemberShape, ...], role: str) -> int:
    """Members in ``role`` that stream (a backend that cannot tell counts by role)."""
    return sum(1 for m in members if m.role == role and m.streaming is not False)


def _database_differences(
    before: tuple[MemberShape, ...], after: tuple[MemberShape, ...]
) -> list[str]:
    out = []
    primaries = [m.name for m in after if m.role == "primary"]
    if len(primaries) != 1:
        shown = ", ".join(primaries) or "none"
        out.append(f"database: {len(primaries)} primaries ({shown}); exactly one is required")
    for role, label in (
        ("sync-standby", "synchronous standby"),
        ("async-replica", "async replica"),
    ):
        had, has = _count(before, role), _count(after, role)
        if has < had:
            out.append(f"database: {has} streaming {label}(s), {had} before the drill")
    now = {m.name: m for m in after}
    for member in before:
        seen = now.get(member.name)
        if seen is None:
            out.append(f"database member {member.name} is gone (was {member.role})")
        elif seen.role == "stopped" and member.role != "stopped":
            out.append(f"database member {member.name} is stopped (was {member.role})")
        elif seen.streaming is False and member.streaming is not False and seen.role != "primary":
            out.append(f"database member {member.name} ({seen.role}) is not streaming")
    return out


def differences(before: PlatformShape, after: PlatformShape) -> list[str]:
    """What does not read back as before, one line each (empty: back at baseline)."""
    out: list[str] = []
    for part, why in after.unreadable.items():
        if part not in before.unreadable:
            out.append(f"{part} cannot be read: {why}")
    for name, state in before.nodes.items():
        now = after.nodes.get(name)
        if now is None and "nodes" not in after.unreadable:
            out.append(f"node {name} is gone (was {state})")
        elif now is not None and now != state:
            out.append(f"node {name} is {now} (was {state})")
    for region, state in before.regions.items():
        now = after.regions.get(region)
        if now is not None and now != state:
            out.append(f"region {region} is {now} (was {state})")
    if before.database is not None and after.database is not None:
        out += _database_differences(before.database, after.database)
    pairs = [
        ("the ERP's database", before.application_database, after.application_database),
        ("the served certificate", before.certificate, after.certificate),
        ("the release", before.release, after.release),
        ("the cache", before.cache, after.cache),
    ]
    for label, was, now in pairs:
        if was is not None and now is not None and was != now:
            out.append(f"{label} is {_short(now)} (was {_short(was)})")
    for key, was in before.facts.items():
        now = after.facts.get(key)
        if now is not None and now != was:
            out.append(f"{key}: {now} (was {was})")
    return out


def _short(value: str) -> str:
    return value[:16] + "…" if len(value) > 24 and " " not in value else value


@dataclass(frozen=True)
class BaselineCheck:
    """The comparison after a drill: back at baseline or not, and after how long."""

    restored: bool
    differences: tuple[str, ...]
    waited_s: float
    shape: PlatformShape

    def text(self) -> str:
        if self.restored:
            return f"the platform reads back as before the drill (after {self.waited_s:.1f}s)"
        return "NOT back to its baseline: " + "; ".join(self.differences)


def await_baseline(
    read: Callable[[], PlatformShape],
    baseline: PlatformShape,
    *,
    timeout_s: float,
    interval_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> BaselineCheck:
    """Read the shape until it matches ``baseline`` or ``timeout_s`` passes: a standby
    being rebuilt, a replica rejoining -- the platform may need a moment to heal, and a
    bounded wait for it is fair; past the bound the difference stands."""
    started = clock()
    while True:
        shape = read()
        found = differences(baseline, shape)
        waited = clock() - started
        if not found:
            return BaselineCheck(True, (), waited, shape)
        if waited >= timeout_s:
            return BaselineCheck(False, tuple(found), waited, shape)
        sleep(min(interval_s, max(0.0, timeout_s - waited)))
