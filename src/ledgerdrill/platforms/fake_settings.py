"""The fake platform's settings in a target file (``platform.kind: fake``): for the
harness's own tests."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerdrill.durations import Duration
from ledgerdrill.settings_model import Strict


class FakePlatformSettings(Strict):
    """An in-memory platform whose state lives in a JSON file: for the harness's own tests."""

    kind: Literal["fake"] = "fake"
    state_file: str = ".ledgerdrill/fake-platform.json"
    nodes: dict[str, str] = Field(
        default_factory=lambda: {"node-a": "a", "node-b": "b", "node-c": "c"},
        description="node name -> zone",
    )
    heal_after: Duration | None = Field(
        default=None, description="the fake's self-healing: a crashed node comes back after this"
    )
    capabilities: list[str] | None = Field(
        default=None, description="offer only these capability protocols (default: all)"
    )
    entry_url: str | None = Field(
        default=None,
        description="an ERP to run load against (a test's JSON-RPC server on 127.0.0.1)",
    )
