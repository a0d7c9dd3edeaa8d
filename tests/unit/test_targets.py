"""Target files: valid ones load; every mistake is one clear line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerdrill.errors import ConfigError
from ledgerdrill.targets import load_target

REPO = Path(__file__).resolve().parents[2]


def test_shipped_sandbox_target_loads() -> None:
    target = load_target(REPO / "targets" / "sandbox.yaml")
    assert target.platform.kind == "sandbox"
    assert target.tiers["finance-core"].rto == 300
    assert target.tiers["finance-core"].rpo == 0
    assert target.tiers["integrations"].objective().rpo_s == 300
    assert target.tier_for("anything") == "finance-core"
    assert target.resolve_path("../probes/sandbox.yaml") == (REPO / "probes" / "sandbox.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


BASE = "name: t\nplatform: {kind: fake}\ntiers:\n  finance-core: {rto: 5m, rpo: 0s}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE.replace("tiers", "tires"), "t.yaml: tires: unknown field (did you mean 'tiers'?"),
        (BASE.replace("5m", "5x"), "t.yaml: tiers.finance-core.rto: '5x' is not a duration"),
        (
            BASE + "default_tier: core\n",
            "default_tier: unknown tier 'core' (defined tiers: finance-core)",
        ),
        (
            BASE + "scenarios: {zone-outage: {tier: gold}}\n",
            "scenarios.zone-outage.tier: unknown tier 'gold'",
        ),
        (
            BASE.replace("kind: fake", "kind: openstack"),
            "platform.kind: 'openstack' is not allowed",
        ),
        (
            BASE.replace("name: t", "name: 'Prod Cluster!'"),
            "name: 'Prod Cluster!' is not a valid name",
        ),
        (
            BASE + "probes: {interval: 1ms}\n",
            "probes.interval: probe interval must be between 50ms",
        ),
        (
            BASE + "safety: {blast_radius: {max_node_share: 2}}\n",
            "safety.blast_radius.max_node_share",
        ),
        ("- a\n- b\n", "a target file must be a YAML mapping of fields, this is a list"),
        ("name: [unclosed\n", "line 2, column 1: not valid YAML"),
        ("", "this is empty"),
    ],
)
def test_mistakes_are_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_target(write(tmp_path, text))
    message = str(info.value)
    assert expected in message
    assert len(message.splitlines()) == 1, message
    assert str(tmp_path / "t.yaml") in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target file not found"):
        load_target(tmp_path / "nope.yaml")
