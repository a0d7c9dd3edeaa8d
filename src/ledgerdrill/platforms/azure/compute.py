"""VM scale-set instances behind AKS nodes: power off, deallocate, start.

Every state change goes through the *scale-set* action with an explicit
``VirtualMachineScaleSetVMInstanceIDs`` list. The generated SDK parameter is
``vm_instance_i_ds``; leaving it ``None`` sends no body, which ARM reads as "every VM
in the scale set" -- so an empty or missing list is refused here, before any call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError
from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceIDs

from ledgerdrill.errors import SafetyViolation
from ledgerdrill.platforms.azure.ids import InstanceRef, ScaleSetRef, Scope
from ledgerdrill.platforms.azure.lro import OperationRunner, arm_error

STOPPED_POWER_STATES = frozenset({"stopped", "stopping", "deallocated", "deallocating"})
ACTIONS = {
    "power-off": "compute.virtual_machine_scale_sets.begin_power_off",
    "deallocate": "compute.virtual_machine_scale_sets.begin_deallocate",
    "start": "compute.virtual_machine_scale_sets.begin_start",
}


@dataclass(frozen=True)
class InstanceState:
    ref: InstanceRef
    zones: tuple[str, ...]
    power: str  # ARM's PowerState/<x> code suffix: running, stopped, deallocated, starting...

    @property
    def running(self) -> bool:
        return self.power == "running"


def explicit_ids(instance_ids: Sequence[str] | None) -> list[str]:
    """The one guard between a zone outage and a whole-scale-set outage."""
    if instance_ids is None or not list(instance_ids):
        raise SafetyViolation(
            "a scale-set action needs an explicit, non-empty instance-id list "
            "(none would mean every VM in the scale set)"
        )
    ids = [str(i) for i in instance_ids]
    if any(not i.strip() for i in ids):
        raise SafetyViolation(f"blank instance id in the explicit list {ids!r}")
    return ids


def power_state(vm: Any) -> str:
    view = getattr(vm, "instance_view", None)
    for status in (getattr(view, "statuses", None) or []) if view is not None else []:
        code = str(status.code or "")
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return "unknown"


class ScaleSets:
    def __init__(self, client: Any, runner: OperationRunner, scope: Scope) -> None:
        self.client = client
        self.runner = runner
        self.scope = scope

    def instances(self, scale_set: ScaleSetRef) -> list[InstanceState]:
        self.scope.check(scale_set.subscription_id, scale_set.resource_group, scale_set.vmss)
        try:
            vms = list(
                self.client.virtual_machine_scale_set_vms.list(
                    scale_set.resource_group, scale_set.vmss, expand="instanceView"
                )
            )
        except AzureError as exc:
            raise arm_error(exc, f"listing instances of {scale_set.vmss}") from exc
        return [
            InstanceState(
                InstanceRef(scale_set, str(vm.instance_id)),
                tuple(str(z) for z in (vm.zones or ())),
                power_state(vm),
            )
            for vm in vms
        ]

    def act(
        self,
        action: str,
        scale_set: ScaleSetRef,
        instance_ids: Sequence[str] | None,
        purpose: str,
        timeout_s: float,
    ) -> None:
        """One ARM call for every listed instance of one scale set, awaited."""
        ids = explicit_ids(instance_ids)
        self.scope.check(scale_set.subscription_id, scale_set.resource_group, scale_set.vmss)
        kwargs: dict[str, Any] = {
            "vm_instance_i_ds": VirtualMachineScaleSetVMInstanceIDs(instance_ids=ids)
        }
        if action == "power-off":
            # a crash, not a shutdown: the guest OS gets no chance to stop cleanly
            kwargs["skip_shutdown"] = True
        self.runner.run(
            ACTIONS[action],
            [scale_set.resource_group, scale_set.vmss],
            purpose,
            timeout_s,
            **kwargs,
        )
