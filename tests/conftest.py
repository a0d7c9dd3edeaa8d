"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FAKE_TARGET = """
name: fake-lab
environment: sandbox
platform:
  kind: fake
  state_file: state.json
  heal_after: {heal}
  capabilities: [NodeControl, ZoneControl]
tiers:
  finance-core: {{rto: {rto}, rpo: 0s}}
default_tier: finance-core
probes: {{interval: 100ms, steady_state: 300ms, settle_timeout: 1s}}
stability: {{samples: 3, duration: 300ms}}
scenarios:
  node-crash: {{recovery_timeout: 3s, params: {{node: node-b}}}}
safety:
  allow: {{nodes: ["node-*"]}}
  blast_radius: {{max_nodes: 1, max_zones: 1, max_node_share: 0.5}}
"""


@pytest.fixture
def fake_target(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a fake-platform target file; returns a function taking overrides."""

    def write(heal: str = "500ms", rto: str = "5s", name: str = "target.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(FAKE_TARGET.format(heal=heal, rto=rto)))
        return path

    return write
