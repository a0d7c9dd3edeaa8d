"""Helpers for the Azure backend tests: the fake ARM, real HTTPS, official SDK clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerdrill.platforms.azure import AzurePlatform
from ledgerdrill.platforms.azure.clients import build_clients
from ledgerdrill.platforms.azure.nodes import AksNode, StaticNodeSource
from ledgerdrill.targets import AzurePlatformSettings
from ledgerdrill.testing.fake_arm import FakeArm, FakeArmServer, FakeCredential

FIXTURES = Path(__file__).parent / "fixtures"
SUB = "11111111-2222-3333-4444-555555555555"
NODE_RG = "MC_erp-prod_aks-erp_westeurope"  # as the target writes it; AKS lower-cases it
DR_RG = "MC_erp-dr_aks-erp-dr_northeurope"
DB_RG = "rg-erp-data"
VMSS = "aks-system-12345678-vmss"
DR_VMSS = "aks-dr-87654321-vmss"
INSTANCES = {"0": "1", "1": "2", "2": "3", "3": "1"}


def provider_id(rg: str, vmss: str, iid: str) -> str:
    return (
        f"azure:///subscriptions/{SUB}/resourceGroups/{rg.lower()}/providers/"
        f"Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}"
    )


class ReadyFollowsPower(StaticNodeSource):
    """Nodes whose readiness follows their VM's power state in the fake (the kubelet)."""

    def __init__(self, arm: FakeArm, nodes: list[tuple[AksNode, str, str]]) -> None:
        super().__init__([n for n, _, _ in nodes])
        self.arm = arm
        self.where = {
            n.name: (rg.lower(), vmss, n.provider_id.rsplit("/", 1)[1]) for n, rg, vmss in nodes
        }

    def list_nodes(self) -> list[AksNode]:  # type: ignore[override]
        out = []
        for node in super().list_nodes():
            rg, vmss, iid = self.where[node.name]
            power = self.arm.scale_sets[(rg, vmss)][iid]["power"]
            out.append(AksNode(node.name, node.zone, node.provider_id, power == "running"))
        return out


def settings_for(
    base_url: str, ca_file: str, state_dir: Path, **extra: object
) -> AzurePlatformSettings:
    data: dict[str, object] = {
        "kind": "azure",
        "subscription_id": SUB,
        "allowed_resource_groups": [NODE_RG, DR_RG, DB_RG],
        "cluster": {
            "name": "aks-erp",
            "region": "westeurope",
            "node_resource_group": NODE_RG,
            "scale_sets": [VMSS],
        },
        "dr_cluster": {
            "name": "aks-erp-dr",
            "region": "northeurope",
            "node_resource_group": DR_RG,
            "scale_sets": [DR_VMSS],
        },
        "database": {"resource_group": DB_RG, "server": "erp-pg", "dr_replica": "erp-pg-dr"},
        "state_dir": str(state_dir),
        "arm_endpoint": base_url,
        "ca_bundle": ca_file,
        "polling_interval": 0.05,
        "operation_timeout": 10,
        "node_ready_timeout": 10,
        "failover_timeout": 10,
        "restore_timeout": 10,
    }
    data.update(extra)
    return AzurePlatformSettings.model_validate(data)


@pytest.fixture(scope="session")
def arm_server() -> Iterator[FakeArmServer]:
    with FakeArmServer(FIXTURES, delay_s=0.15) as server:
        yield server


@pytest.fixture
def arm(arm_server: FakeArmServer) -> FakeArm:
    fake = arm_server.arm
    with fake.lock:
        fake.requests.clear()
        fake.operations.clear()
        fake.failures.clear()
        fake.servers.clear()
        fake.throttle = 0
        fake.frozen = False
    seed(fake)
    return fake


def seed(fake: FakeArm) -> None:
    """The estate every test starts from: two clusters, a zone-redundant server, a replica."""
    fake.add_scale_set(NODE_RG, VMSS, INSTANCES)
    fake.add_scale_set(DR_RG, DR_VMSS, {"0": "1", "1": "2"}, location="northeurope")
    fake.add_server(SUB, DB_RG, "erp-pg", zone="1", standby_zone="2")
    fake.add_server(
        SUB, DB_RG, "erp-pg-dr", standby_zone=None, location="northeurope", role="GeoAsyncReplica"
    )


def make_platform(arm_server: FakeArmServer, tmp_path: Path, **extra: object) -> AzurePlatform:
    settings = settings_for(arm_server.base_url, arm_server.ca_file, tmp_path / "azure", **extra)
    arm = arm_server.arm
    nodes = [
        (
            AksNode(
                f"aks-system-{iid}", f"westeurope-{zone}", provider_id(NODE_RG, VMSS, iid), True
            ),
            NODE_RG,
            VMSS,
        )
        for iid, zone in INSTANCES.items()
    ] + [
        (
            AksNode(f"aks-dr-{iid}", f"northeurope-{zone}", provider_id(DR_RG, DR_VMSS, iid), True),
            DR_RG,
            DR_VMSS,
        )
        for iid, zone in {"0": "1", "1": "2"}.items()
    ]
    compute, postgres = build_clients(settings, FakeCredential())
    return AzurePlatform(
        "aks-test",
        settings,
        compute_client=compute,
        postgres_client=postgres,
        node_source=ReadyFollowsPower(arm, nodes),
        state_dir=tmp_path / "azure",
    )


@pytest.fixture
def platform(arm: FakeArm, arm_server: FakeArmServer, tmp_path: Path) -> Iterator[AzurePlatform]:
    p = make_platform(arm_server, tmp_path)
    yield p
    p.close()
