"""Node faults: one node crashes or hangs; self-healing must bring service back."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import NodeCrash, NodeFreeze
from ledgerdrill.platforms.base import Platform


def _node(drill: Drill) -> str:
    node = drill.param("node")
    if not node:
        pytest.skip(f"target gives no node for {drill.scenario_id} (scenarios.<id>.params.node)")
    return str(node)


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("month-end-close")
@pytest.mark.requires("NodeControl")
def test_node_crash(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=_node(drill))):
        drill.wait_for_recovery()
        drill.observe()


@pytest.mark.tier("finance-core")
@pytest.mark.loadprofile("steady")
@pytest.mark.requires("NodeControl")
def test_node_freeze(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    with drill.inject(NodeFreeze(platform, node=_node(drill))):
        drill.wait_for_recovery()
        drill.observe()
