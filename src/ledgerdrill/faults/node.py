"""Node faults, generic over any backend with ``NodeControl``."""

from __future__ import annotations

from collections.abc import Sequence

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import NodeControl, NodeInfo, NodeState, Platform
from ledgerdrill.target_kinds import TargetKind


class _NodeFault(Fault):
    capability = NodeControl
    effect: NodeState

    def __init__(self, platform: Platform, node: str) -> None:
        super().__init__(platform)
        self.node = node
        self.control = platform.capability(NodeControl)

    def _info(self) -> NodeInfo:
        for info in self.control.nodes():
            if info.name == self.node:
                return info
        known = ", ".join(n.name for n in self.control.nodes())
        raise FaultError(f"no node {self.node!r} on platform {self.platform.name} (nodes: {known})")

    def targets(self) -> Sequence[TargetRef]:
        info = self._info()
        return [TargetRef(TargetKind.NODE, info.name, zone=info.zone, region=info.region)]

    def params(self) -> JSONParams:
        return {"node": self.node}

    def verify(self) -> Evidence:
        state = self.control.node_state(self.node)
        if state is not self.effect:
            raise FaultError(
                f"node {self.node} is {state}, expected {self.effect} after {self.kind}"
            )
        return Evidence(f"node {self.node} is {state}", {"node": self.node, "state": str(state)})

    def revert(self) -> None:
        self.control.restore_node(self.node)


@register_fault
class NodeCrash(_NodeFault):
    """Every process on the node dies at once (SIGKILL; power off on a cloud VM)."""

    kind = "node-crash"
    effect = NodeState.STOPPED

    def describe(self) -> str:
        return f"crash node {self.node} (kill everything on it)"

    def inject(self) -> None:
        self.control.crash_node(self.node)


@register_fault
class NodeFreeze(_NodeFault):
    """The node hangs: its processes stop (SIGSTOP), like a partition or a stuck kernel."""

    kind = "node-freeze"
    effect = NodeState.FROZEN

    def describe(self) -> str:
        return f"freeze node {self.node} (hang every process on it)"

    def inject(self) -> None:
        self.control.freeze_node(self.node)


@register_fault
class NodeDrain(_NodeFault):
    """Planned maintenance: cordon the node and move its workloads away."""

    kind = "node-drain"
    effect = NodeState.DRAINED
    disruptive = False

    def describe(self) -> str:
        return f"drain node {self.node} (cordon, move its workloads)"

    def inject(self) -> None:
        self.control.drain_node(self.node)
