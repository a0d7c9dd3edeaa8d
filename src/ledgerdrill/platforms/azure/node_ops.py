"""NodeControl, ZoneControl and ZoneOutageControl on AKS through VM scale sets.

A node is the scale-set instance named by its ``spec.providerID``; its zone is
``<region>-<ARM zone>`` (see ``zones.py``: bare zone numbers are ambiguous across
regions). A zone outage is one power-off call per scale set of the zone's cluster,
with the explicit instance-id list; its revert starts them and waits for Ready.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerdrill.errors import FaultError, PlatformError, SafetyViolation, UnsupportedCapability
from ledgerdrill.platforms.azure.compute import InstanceState, ScaleSets
from ledgerdrill.platforms.azure.ids import InstanceRef, ScaleSetRef, Scope, parse_provider_id
from ledgerdrill.platforms.azure.lro import OperationRunner
from ledgerdrill.platforms.azure.nodes import AksNode, NodeSource, arm_zone
from ledgerdrill.platforms.azure.zones import split_zone, zone_name
from ledgerdrill.platforms.base import NodeInfo, NodeState
from ledgerdrill.targets import AzureClusterSettings, AzurePlatformSettings
from ledgerdrill.timeline import Clock


class AzureNodeOps:
    kind: str
    settings: AzurePlatformSettings
    node_source: NodeSource
    scale_sets: ScaleSets
    runner: OperationRunner
    scope: Scope
    clock: Clock

    if TYPE_CHECKING:  # provided by AzurePlatform

        def _record(self, kind: str, name: str, attributes: Mapping[str, Any]) -> None: ...

    # -- node mapping --------------------------------------------------------------
    def _clusters(self) -> list[AzureClusterSettings]:
        return [c for c in (self.settings.cluster, self.settings.dr_cluster) if c is not None]

    def _cluster_of(self, ref: InstanceRef) -> AzureClusterSettings:
        for cluster in self._clusters():
            if ref.scale_set.resource_group == cluster.node_resource_group.lower() and (
                not cluster.scale_sets or ref.scale_set.vmss in cluster.scale_sets
            ):
                return cluster
        raise SafetyViolation(
            f"scale set {ref.scale_set.vmss} in {ref.scale_set.resource_group} belongs to "
            "no cluster of the target; refused before any call"
        )

    def _mapped(self) -> dict[str, tuple[AksNode, InstanceRef]]:
        """Every node with its instance, each checked against the target's subscription,
        resource groups and clusters *before* any ARM call: a kube context pointing at
        another cluster (another subscription) is refused as a whole, not node by node."""
        out = {}
        for node in self.node_source.list_nodes():
            ref = parse_provider_id(node.provider_id)
            self.scope.check(
                ref.scale_set.subscription_id, ref.scale_set.resource_group, f"node {node.name}"
            )
            self._cluster_of(ref)
            out[node.name] = (node, ref)
        return out

    def check_scope(self) -> None:
        """Refuse (``SafetyViolation``) when a node is outside the target's allowlist."""
        self._mapped()

    def _node(self, name: str) -> tuple[AksNode, InstanceRef]:
        mapped = self._mapped()
        if name not in mapped:
            raise FaultError(f"no AKS node {name!r} (nodes: {', '.join(sorted(mapped))})")
        return mapped[name]

    def _scale_sets(self, region: str | None = None) -> list[ScaleSetRef]:
        refs: set[ScaleSetRef] = set()
        for cluster in self._clusters():
            if region is not None and cluster.region != region:
                continue
            for vmss in cluster.scale_sets:
                refs.add(
                    ScaleSetRef(
                        self.settings.subscription_id.lower(),
                        cluster.node_resource_group.lower(),
                        vmss,
                    )
                )
        if not refs:  # no scale sets named: the ones the nodes run on
            for _, ref in self._mapped().values():
                if region is None or self._cluster_of(ref).region == region:
                    refs.add(ref.scale_set)
        return sorted(refs)

    def _instance_states(
        self, scale_sets: Sequence[ScaleSetRef]
    ) -> dict[InstanceRef, InstanceState]:
        states: dict[InstanceRef, InstanceState] = {}
        for ss in scale_sets:
            for state in self.scale_sets.instances(ss):
                states[state.ref] = state
        return states

    def _state_of(self, node: AksNode, instance: InstanceState | None) -> NodeState:
        if instance is None or not instance.running:
            return NodeState.STOPPED
        return NodeState.RUNNING if node.ready else NodeState.STOPPED

    def _zone_of(self, region: str, node: AksNode, instance: InstanceState | None) -> str:
        number = instance.zones[0] if instance and instance.zones else arm_zone(node.zone)
        return zone_name(region, number)

    # -- NodeControl ---------------------------------------------------------------
    def nodes(self) -> Sequence[NodeInfo]:
        mapped = self._mapped()
        states = self._instance_states(sorted({ref.scale_set for _, ref in mapped.values()}))
        infos = []
        for name, (node, ref) in sorted(mapped.items()):
            instance = states.get(ref)
            region = self._cluster_of(ref).region
            infos.append(
                NodeInfo(
                    name,
                    self._zone_of(region, node, instance),
                    region,
                    roles=("agent",),
                    state=self._state_of(node, instance),
                )
            )
        return infos

    def node_state(self, name: str) -> NodeState:
        node, ref = self._node(name)
        return self._state_of(node, self._instance_states([ref.scale_set]).get(ref))

    def crash_node(self, name: str) -> None:
        _, ref = self._node(name)
        self.scale_sets.act(
            "power-off",
            ref.scale_set,
            [ref.instance_id],
            f"power off (skip shutdown) node {name}",
            self.settings.operation_timeout,
        )

    def lose_node(self, name: str) -> None:
        """Node loss: deallocate (the VM gives its host back, like a hardware failure)."""
        _, ref = self._node(name)
        self.scale_sets.act(
            "deallocate",
            ref.scale_set,
            [ref.instance_id],
            f"deallocate node {name}",
            self.settings.operation_timeout,
        )

    def freeze_node(self, name: str) -> None:
        raise UnsupportedCapability(
            self.kind,
            "NodeControl.freeze_node",
            "Azure has no API to hang a VM; use a network fault or the sandbox",
        )

    def drain_node(self, name: str) -> None:
        raise UnsupportedCapability(
            self.kind,
            "NodeControl.drain_node",
            "draining is a Kubernetes operation: compose with the kubernetes backend",
        )

    def restore_node(self, name: str) -> None:
        self._restore_nodes([name])

    def _restore_nodes(self, names: Sequence[str]) -> None:
        """Start every stopped instance behind ``names`` (one call per scale set) and
        wait until the nodes are Ready. Idempotent."""
        self.runner.settle_pending(self.settings.operation_timeout)
        refs = {name: self._node(name)[1] for name in names}
        states = self._instance_states(sorted({r.scale_set for r in refs.values()}))
        stopped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref in refs.values():
            state = states.get(ref)
            if state is None or not state.running:
                stopped[ref.scale_set].append(ref.instance_id)
        self._start_instances(stopped, "start instances")
        self._wait_ready(list(names))

    def _start_instances(self, stopped: Mapping[ScaleSetRef, Sequence[str]], why: str) -> None:
        self._act_per_scale_set("start", stopped, why)

    def _power_off_instances(self, running: Mapping[ScaleSetRef, Sequence[str]], why: str) -> None:
        self._act_per_scale_set("power-off", running, why)

    def _act_per_scale_set(
        self, action: str, instances: Mapping[ScaleSetRef, Sequence[str]], why: str
    ) -> None:
        """One call per scale set, each with its explicit instance-id list."""
        for ss, ids in sorted(instances.items()):
            self.scale_sets.act(
                action,
                ss,
                ids,
                f"{why}: {action} {ss.vmss} instances {', '.join(ids)}",
                self.settings.operation_timeout,
            )

    def _wait_ready(self, names: list[str]) -> None:
        start = self.clock.now()
        while True:
            ready = {n.name for n in self.node_source.list_nodes() if n.ready}
            missing = [n for n in names if n not in ready]
            if not missing:
                self._record("azure.nodes", "ready", {"nodes": names})
                return
            if self.clock.now().seconds_since(start) > self.settings.node_ready_timeout:
                raise PlatformError(
                    f"nodes not Ready within {self.settings.node_ready_timeout:g} s: "
                    f"{', '.join(missing)}"
                )
            self.clock.sleep(min(self.settings.polling_interval, 1.0))

    # -- ZoneControl ---------------------------------------------------------------
    def zones(self) -> Sequence[str]:
        return sorted({n.zone for n in self.nodes() if n.zone})

    def _split(self, zone: str) -> tuple[str, str]:
        return split_zone(zone, [c.region for c in self._clusters()])

    def nodes_in_zone(self, zone: str) -> Sequence[str]:
        self._split(zone)  # a bare "2" is refused, never matched in every region
        return [n.name for n in self.nodes() if n.zone == zone]

    def zone_instances(self, zone: str) -> dict[ScaleSetRef, list[str]]:
        """The instances of ``zone``'s cluster whose ARM ``zones`` include its number,
        per scale set: what a zone outage powers off. Only that region's scale sets are
        read, so a DR instance with the same zone number is never in the list."""
        region, number = self._split(zone)
        states = self._instance_states(self._scale_sets(region))
        grouped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref, state in sorted(states.items()):
            if number in state.zones:
                grouped[ref.scale_set].append(ref.instance_id)
        return dict(grouped)

    # -- ZoneOutageControl ---------------------------------------------------------
    def zone_outage(self, zone: str) -> None:
        """Zone outage in one call per scale set, with the explicit instance-id list."""
        grouped = self.zone_instances(zone)
        if not grouped:
            raise FaultError(f"no scale-set instances in zone {zone!r}")
        self._power_off_instances(grouped, f"zone {zone} outage")

    def crash_zone(self, zone: str) -> list[str]:
        """``zone_outage``, returning the instance ids it powered off."""
        grouped = self.zone_instances(zone)
        self.zone_outage(zone)
        return [i for ids in grouped.values() for i in ids]

    def restore_zone(self, zone: str) -> None:
        """Start every stopped instance of the zone (one call per scale set), then wait
        for the zone's nodes to be Ready. Idempotent."""
        self.runner.settle_pending(self.settings.operation_timeout)
        region, number = self._split(zone)
        stopped: dict[ScaleSetRef, list[str]] = defaultdict(list)
        for ref, state in sorted(self._instance_states(self._scale_sets(region)).items()):
            if number in state.zones and not state.running:
                stopped[ref.scale_set].append(ref.instance_id)
        self._start_instances(stopped, f"zone {zone}")
        self._wait_ready(list(self.nodes_in_zone(zone)))
