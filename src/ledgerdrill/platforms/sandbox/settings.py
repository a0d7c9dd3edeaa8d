"""The sandbox backend's settings in a target file (``platform.kind: sandbox``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerdrill.durations import Duration
from ledgerdrill.settings_model import Strict


class SandboxPlatformSettings(Strict):
    kind: Literal["sandbox"] = "sandbox"
    state_dir: str = ".ledgerdrill/sandbox"
    erp_replicas_per_node: int = Field(default=1, ge=1, le=4)
    eviction_timeout: Duration = 5.0
    ha_detection_window: Duration = 2.0
    entry_point: Literal["hardened", "naive"] = Field(
        default="hardened",
        description="hardened: forwarding timeouts, passive health checks, retries of "
        "idempotent requests only; naive: none of these (to see the difference they make)",
    )
    network_links: bool = Field(
        default=False,
        description="route the ERP's database connections and the WAL streams between "
        "the database servers through links the sandbox controls (network faults act "
        "on them)",
    )
