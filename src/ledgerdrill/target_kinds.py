"""What a fault or a runbook step can act on, declared once: each kind of target and the
target file's allowlist field that names what of that kind may be touched
(``safety.allow.<field>``). ``faults.base.TargetRef`` carries a kind, the safety guard
looks its field up here, and ``targets.AllowList`` has exactly these fields (checked when
the module loads)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class TargetKind(StrEnum):
    NODE = "node"
    ZONE = "zone"
    REGION = "region"
    DATABASE = "database"
    CERTIFICATE = "certificate"
    CACHE = "cache"
    RELEASE = "release"
    LINK = "link"


ALLOWLIST_FIELD: Final[Mapping[TargetKind, str]] = {
    TargetKind.NODE: "nodes",
    TargetKind.ZONE: "zones",
    TargetKind.REGION: "regions",
    TargetKind.DATABASE: "databases",
    TargetKind.CERTIFICATE: "certificates",
    TargetKind.CACHE: "caches",
    TargetKind.RELEASE: "releases",
    TargetKind.LINK: "links",
}
