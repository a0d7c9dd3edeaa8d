"""The independent witness (``sandbox.witness``) against the harness's own reading of
the platform (``platforms.shape``): healthy when the sandbox is, and both name the same
breakage when a synchronous standby's node is down. Leaves the sandbox as found."""

from __future__ import annotations

from typing import Any

from ledgerdrill.platforms.sandbox.witness import SandboxWitness
from ledgerdrill.platforms.shape import differences, read_shape


def test_the_witness_and_the_shape_agree_on_a_lost_standby(sandbox: Any) -> None:
    platform = sandbox.platform
    witness = SandboxWitness(sandbox.state_dir)
    first = witness.await_healthy(timeout_s=60)
    assert first.healthy, first.problems
    assert any("posted witness-" in line for line in first.checked)
    before = read_shape(platform)
    standby = next(m for m in platform.database_topology().members if m.role == "sync-standby")
    platform.crash_node(standby.node)
    try:
        broken = witness.check()
        found = differences(before, read_shape(platform))
    finally:
        platform.restore_node(standby.node)
    assert any("no synchronous standby streams" in p for p in broken.problems), broken.problems
    assert any(f"node {standby.node}" in p for p in broken.problems), broken.problems
    assert any("streaming synchronous standby(s), 1 before" in line for line in found), found
    # the HA controller rejoins the restarted member: both witnesses see it back
    healed = witness.await_healthy(timeout_s=120)
    assert healed.healthy, healed.problems
    assert differences(before, read_shape(platform)) == []
