"""``SandboxPlatform``: the embedded sandbox as a ledgerdrill backend.

Its inventory comes from the topology, so a dry-run plan works whether or not the
sandbox is running; acting on it needs the sandbox up (``ledgerdrill sandbox up``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import NodeInfo, NodeState, Platform
from ledgerdrill.sandbox.nodes import NodeProcesses
from ledgerdrill.sandbox.topology import Topology, default_topology
from ledgerdrill.targets import SandboxPlatformSettings, Target


class SandboxPlatform(Platform):
    kind = "sandbox"

    def __init__(self, name: str, state_dir: Path, topology: Topology) -> None:
        super().__init__(name)
        self.state_dir = state_dir
        self.topology = topology

    @classmethod
    def from_settings(cls, target: Target, settings: SandboxPlatformSettings) -> SandboxPlatform:
        return cls(target.name, Path(settings.state_dir).resolve(), default_topology())

    def _node(self, name: str) -> NodeProcesses:
        try:
            self.topology.node(name)
        except KeyError:
            known = ", ".join(n.name for n in self.topology.nodes)
            raise PlatformError(f"the sandbox has no node {name!r} (nodes: {known})") from None
        return NodeProcesses(self.state_dir, name)

    # -- NodeControl -----------------------------------------------------------------
    def nodes(self) -> Sequence[NodeInfo]:
        return [
            NodeInfo(
                n.name, n.zone, n.region, n.roles, NodeProcesses(self.state_dir, n.name).state()
            )
            for n in self.topology.nodes
        ]

    def node_state(self, name: str) -> NodeState:
        return self._node(name).state()

    def crash_node(self, name: str) -> None:
        self._node(name).crash()

    def freeze_node(self, name: str) -> None:
        self._node(name).freeze()

    def drain_node(self, name: str) -> None:
        raise PlatformError("draining a sandbox node is not supported; use crash or freeze")

    def restore_node(self, name: str) -> None:
        self._node(name).restore()

    # -- ZoneControl -----------------------------------------------------------------
    def zones(self) -> Sequence[str]:
        return self.topology.zones()

    def nodes_in_zone(self, zone: str) -> Sequence[str]:
        return [n.name for n in self.topology.in_zone(zone)]

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info["regions"] = {
            region: {zone: self.nodes_in_zone(zone) for zone in self.topology.zones(region)}
            for region in self.topology.regions()
        }
        return info
