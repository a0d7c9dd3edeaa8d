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
        default=True,
        description="route the ERP's database connections and the WAL streams between "
        "the database servers through links the sandbox controls (network faults act "
        "on them)",
    )
    # Microsoft's "Azure network round-trip latency statistics" gives 3-28 ms for round
    # trips between European regions (October 2019, its first table); 20 ms is a paired
    # European region pair's order (West Europe - North Europe). Bandwidth between Azure
    # regions is not the limit for a database's WAL, so none is set.
    cross_region_round_trip: Duration = Field(
        default=0.020,
        description="round trip added on every link between the regions (the DR "
        "replica's WAL stream), half each way; 0s: none",
    )
