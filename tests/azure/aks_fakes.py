"""An AKS estate on both fakes: the fake ARM (scale sets, Flexible Servers, a virtual
endpoint) and two fake Kubernetes API servers (the primary and the dr cluster) whose
nodes carry ``spec.providerID`` naming the fake ARM's scale-set instances.

The names are those of ``targets/aks-example.yaml``, so the CLI test runs that file
unchanged. A node's Ready condition follows its VM's power state in the fake ARM (the
kubelet stops reporting when the VM is off), which is the evidence the backend reads.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kube_witness import assert_nothing_dropped
from ledgerdrill.platforms.azure import AzurePlatform
from ledgerdrill.platforms.azure.clients import azure_platform_from_target
from ledgerdrill.targets import Target, load_target
from ledgerdrill.testing.fake_arm import FakeArm, FakeArmServer, FakeCredential
from ledgerdrill.testing.fakeapi.seed import seed_reference_stack
from ledgerdrill.testing.fakeapi.server import TOKEN, FakeKubernetes

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "targets" / "aks-example.yaml"
FIXTURES = Path(__file__).parent / "fixtures"
SUB = "00000000-0000-0000-0000-000000000000"
NODE_RG = "MC_rg-erp_aks-erp_westeurope"
DR_RG = "MC_rg-erp-dr_aks-erp-dr_northeurope"
DB_RG = "rg-erp-data"
# scale set -> (resource group, region, {instance id: ARM zone})
SCALE_SETS: dict[str, tuple[str, str, dict[str, str]]] = {
    "aks-system-12345678-vmss": (NODE_RG, "westeurope", {"0": "1", "1": "2", "2": "3"}),
    "aks-erp-12345678-vmss": (NODE_RG, "westeurope", {"0": "1", "1": "2", "2": "3"}),
    "aks-erp-87654321-vmss": (DR_RG, "northeurope", {"0": "1", "1": "2"}),
}
ZONE, REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
NAMESPACE, LOGIN_SECRET = "erp", "erp-login"  # as in the example target


def node_name(vmss: str, iid: str) -> str:
    """AKS names a node after its scale set and a six-digit instance suffix."""
    return f"{vmss}{int(iid):06d}"


def provider_id(sub: str, rg: str, vmss: str, iid: str) -> str:
    return (
        f"azure:///subscriptions/{sub}/resourceGroups/{rg.lower()}/providers/"
        f"Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}"
    )


def seed_arm(arm: FakeArm) -> None:
    with arm.lock:
        arm.requests.clear()
        arm.operations.clear()
        arm.failures.clear()
        arm.servers.clear()
        arm.endpoints.clear()
        arm.scale_sets.clear()
        arm.throttle = 0
        arm.frozen = False
    for vmss, (rg, region, instances) in SCALE_SETS.items():
        arm.add_scale_set(rg, vmss, instances, location=region)
    arm.add_server(SUB, DB_RG, "erp-pg", zone="1", standby_zone="2")
    arm.add_server(
        SUB, DB_RG, "erp-pg-dr", standby_zone=None, location="northeurope", role="GeoAsyncReplica"
    )
    arm.add_virtual_endpoint(DB_RG, "erp-pg", "erp-pg-ve", ["erp-pg", "erp-pg-dr"])


def _aks_nodes(fake: FakeKubernetes, region: str, sub: str, template: dict[str, Any]) -> None:
    """Replace the seeded kind nodes by AKS nodes of ``region`` (AKS has no visible
    control plane), built from a seeded node object (a real NodeList item)."""
    store = fake.store
    for node in store.list("core/nodes", None):
        store.delete("core/nodes", "", node["metadata"]["name"])
    for vmss, (rg, vmss_region, instances) in SCALE_SETS.items():
        if vmss_region != region:
            continue
        for iid, zone in instances.items():
            name = node_name(vmss, iid)
            node = copy.deepcopy(template)
            labels = dict(node["metadata"]["labels"])
            labels.update({"kubernetes.io/hostname": name, ZONE: f"{region}-{zone}",
                           REGION: region, "kubernetes.azure.com/agentpool": vmss.split("-")[1]})  # fmt: skip
            node["metadata"] = {"name": name, "labels": labels,
                                "annotations": dict(node["metadata"].get("annotations", {}))}  # fmt: skip
            node["spec"] = {"providerID": provider_id(sub, rg, vmss, iid)}
            store.create("core/nodes", "", node)


def kubelet_follows_power(arm: FakeArm, clusters: list[FakeKubernetes]) -> None:
    """The kubelet's Ready condition follows the VM: off -> NotReady, running -> Ready."""

    def on_power(rg: str, vmss: str, iid: str, power: str) -> None:
        status = "True" if power == "running" else "False"
        name = node_name(vmss, iid)
        for fake in clusters:
            if fake.store.get("core/nodes", "", name) is None:
                continue

            def change(node: dict[str, Any], value: str = status) -> dict[str, Any]:
                for condition in node["status"]["conditions"]:
                    if condition["type"] == "Ready":
                        condition["status"] = value
                        condition["reason"] = (
                            "KubeletReady" if value == "True" else "NodeStatusUnknown"
                        )
                return node

            fake.store.update("core/nodes", "", name, change)

    arm.on_power = on_power


def write_kubeconfig(path: Path, contexts: dict[str, FakeKubernetes]) -> Path:
    names = list(contexts)
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": names[0],
        "clusters": [{"name": n, "cluster": {"server": f.url}} for n, f in contexts.items()],
        "users": [{"name": n, "user": {"token": TOKEN}} for n in names],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in names],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@dataclass
class AksEstate:
    arm: FakeArm
    arm_server: FakeArmServer
    primary: FakeKubernetes
    dr: FakeKubernetes
    kubeconfig: Path
    folder: Path

    def target(self, **platform: Any) -> Target:
        """``targets/aks-example.yaml`` pointed at the fakes, with test timings."""
        example = load_target(EXAMPLE)
        data = example.model_dump(mode="json", exclude={"source"}, exclude_none=True)
        settings = data["platform"]
        settings.update(
            state_dir=str(self.folder / "azure"),
            arm_endpoint=self.arm_server.base_url,
            ca_bundle=self.arm_server.ca_file,
            polling_interval=0.05, operation_timeout=10, node_ready_timeout=10,
            failover_timeout=10, restore_timeout=10,
        )  # fmt: skip
        settings["kubernetes"].update(
            kubeconfig=str(self.kubeconfig),
            erp_deployment="ledgerdrill-erp",
            erp_container="erp",
            erp_selector="app.kubernetes.io/name=ledgerdrill-erp",
            ingress_tls_secret="ledgerdrill-tls",
            entry_url=f"https://127.0.0.1:{self.primary.ingress_port}",
            poll_interval="50ms",
            wait_timeout="15s",
        )
        settings.update(platform)
        return Target.model_validate({**data, "platform": settings})

    def platform(self, **platform: Any) -> AzurePlatform:
        target = self.target(**platform)
        assert target.platform.kind == "azure"
        return azure_platform_from_target(
            target,
            target.platform,  # type: ignore[arg-type]
            credential=FakeCredential(),
        )


@contextmanager
def aks_estate(arm_server: FakeArmServer, folder: Path) -> Iterator[AksEstate]:
    seed_arm(arm_server.arm)
    primary = FakeKubernetes(ready_delay=0.05, reschedule_delay=0.6)
    dr = FakeKubernetes(ready_delay=0.05, reschedule_delay=0.6)
    # the ERP, Redis, the TLS and login secrets of deploy/kind, in the example's namespace
    seed_reference_stack(primary, namespace=NAMESPACE)
    login = copy.deepcopy(primary.store.get("core/secrets", NAMESPACE, "ledgerdrill-erp-login"))
    assert login is not None, "the reference stack seeds the ERP's login secret"
    login["metadata"] = {"name": LOGIN_SECRET}  # the example target's name for it
    primary.store.create("core/secrets", NAMESPACE, login)
    seeded = primary.store.list("core/nodes", None)
    template = copy.deepcopy(next(n for n in seeded if ZONE in n["metadata"]["labels"]))
    _aks_nodes(primary, "westeurope", SUB, template)
    _aks_nodes(dr, "northeurope", SUB, template)
    primary.start()
    dr.start()
    try:
        primary.wait_settled()
        kubelet_follows_power(arm_server.arm, [primary, dr])
        kubeconfig = write_kubeconfig(folder / "kubeconfig", {"aks-erp": primary, "aks-erp-dr": dr})
        yield AksEstate(arm_server.arm, arm_server, primary, dr, kubeconfig, folder)
        assert_nothing_dropped(primary, dr)
    finally:
        arm_server.arm.on_power = None
        primary.stop()
        dr.stop()
