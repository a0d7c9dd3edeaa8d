"""An AKS target composed of both backends, on both fakes: Azure acts on scale sets and
Flexible Servers; the Kubernetes backend of the cluster's context gives node listing,
Ready evidence, certificates, cache and releases. Also geo-restore and a virtual
endpoint whose writer follows a Switchover promotion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aks_fakes import DB_RG, SUB, AksEstate, aks_estate, node_name

from ledgerdrill.errors import ConfigError, PlatformError
from ledgerdrill.faults import NodeCrash
from ledgerdrill.platforms.azure import AzurePlatform
from ledgerdrill.platforms.base import (
    CacheControl,
    CertificateControl,
    NodeState,
    ReleaseControl,
)
from ledgerdrill.platforms.kubernetes import KubernetesPlatform
from ledgerdrill.testing.fake_arm import FakeArmServer

ERP_NODE = node_name("aks-erp-12345678-vmss", "1")


@pytest.fixture
def estate(arm_server: FakeArmServer, tmp_path: Path) -> Iterator[AksEstate]:
    with aks_estate(arm_server, tmp_path) as found:
        yield found


@pytest.fixture
def aks(estate: AksEstate) -> Iterator[AzurePlatform]:
    platform = estate.platform()
    yield platform
    platform.close()


def test_capabilities_come_from_both_backends(aks: AzurePlatform) -> None:
    assert isinstance(aks.kubernetes, KubernetesPlatform)
    for protocol in (CertificateControl, CacheControl, ReleaseControl):
        assert aks.capability(protocol) is aks.kubernetes
    assert aks.capability(CertificateControl).served_certificate().variant == "valid"
    assert aks.capability(ReleaseControl).current_release().version == "2026.11.0"
    assert aks.describe()["kubernetes"] == {
        "context": "aks-erp",
        "namespace": "erp",
        "provides": ["CertificateControl", "CacheControl", "ReleaseControl"],
    }


def test_nodes_come_from_the_kube_api_and_map_to_scale_set_instances(aks: AzurePlatform) -> None:
    nodes = {n.name: n for n in aks.nodes()}
    assert len(nodes) == 8  # 6 in westeurope (primary context), 2 in northeurope (dr context)
    assert nodes[ERP_NODE].zone == "westeurope-2" and nodes[ERP_NODE].region == "westeurope"
    assert nodes[node_name("aks-erp-87654321-vmss", "1")].zone == "northeurope-2"


def test_node_crash_is_seen_as_not_ready_by_the_kube_api(
    aks: AzurePlatform, estate: AksEstate
) -> None:
    fault = NodeCrash(aks, ERP_NODE)
    fault.inject()
    (call,) = estate.arm.requests_to(r"/aks-erp-12345678-vmss/poweroff$", "POST")
    assert call.body == {"instanceIds": ["1"]} and call.query["skipShutdown"] == "true"
    node = estate.primary.store.get("core/nodes", "", ERP_NODE)
    assert node is not None
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"  # the evidence is the kubelet's, not ARM's
    assert fault.verify().summary == f"node {ERP_NODE} is stopped"
    fault.revert()  # starts the instance, waits until the kube API says Ready
    assert aks.node_state(ERP_NODE) is NodeState.RUNNING
    assert any(e.name == "ready" for e in aks.events_between(None, None))


def test_promotion_with_a_virtual_endpoint_keeps_the_erp_host(
    aks: AzurePlatform, estate: AksEstate
) -> None:
    switched: list[tuple[str, str]] = []
    aks.connection_switch = lambda name, host: switched.append((name, host))
    aks.fail_over_to("northeurope")
    (read, *_) = estate.arm.requests_to(
        r"/flexibleServers/erp-pg/virtualendpoints/erp-pg-ve$", "GET"
    )
    assert read.query["api-version"] == "2026-10-01"
    (patch,) = estate.arm.requests_to(r"/flexibleServers/erp-pg-dr$", "PATCH")
    assert patch.body == {
        "properties": {"replica": {"promoteMode": "Switchover", "promoteOption": "Planned"}}
    }
    # the endpoint was only read (a drill never edits it); Azure moved the writer
    assert estate.arm.requests_to(r"/virtualendpoints/", "PATCH") == []
    assert estate.arm.writer_of("erp-pg-ve") == "erp-pg-dr"
    assert switched == [("erp-pg-dr", "erp-pg-ve.writer.postgres.database.azure.com")]
    follows = [e for e in aks.events_between(None, None) if e.name == "writer-follows"]
    assert follows and follows[0].attributes["server"] == "erp-pg-dr"
    aks.restore_region("westeurope")  # fail back: the writer follows erp-pg again
    assert estate.arm.writer_of("erp-pg-ve") == "erp-pg"
    assert switched[-1] == ("erp-pg", "erp-pg-ve.writer.postgres.database.azure.com")


def test_a_replica_outside_the_endpoint_is_refused_before_promotion(
    aks: AzurePlatform, estate: AksEstate
) -> None:
    estate.arm.endpoints[(DB_RG.lower(), "erp-pg", "erp-pg-ve")]["properties"]["members"] = [
        "erp-pg"
    ]
    with pytest.raises(PlatformError, match="does not include erp-pg-dr"):
        aks.fail_over_to("northeurope")
    assert estate.arm.requests_to(r"/flexibleServers/erp-pg-dr$", "PATCH") == []


def test_geo_restore_into_the_paired_region(aks: AzurePlatform, estate: AksEstate) -> None:
    name = aks.geo_restore("2026-11-30T22:00:00Z")
    assert name == "erp-pg-geo-20261130220000"
    (put,) = estate.arm.requests_to(rf"/resourceGroups/{DB_RG}/.*/flexibleServers/{name}$", "PUT")
    assert put.query["api-version"] == "2026-10-01"
    assert put.body["location"] == "northeurope"
    props = put.body["properties"]
    assert props["createMode"] == "GeoRestore"
    assert props["sourceServerResourceId"] == (
        f"/subscriptions/{SUB}/resourceGroups/{DB_RG}/providers/"
        "Microsoft.DBforPostgreSQL/flexibleServers/erp-pg"
    )
    assert props["pointInTimeUTC"].startswith("2026-11-30T22:00:00")
    assert estate.arm.servers[(DB_RG.lower(), name)]["properties"]["state"] == "Ready"
    assert aks.geo_restore("2026-11-30T22:00:00Z") == name  # resumed run: no second PUT
    assert len(estate.arm.requests_to(rf"/flexibleServers/{name}$", "PUT")) == 1


def test_region_dr_without_a_replica_geo_restores(estate: AksEstate) -> None:
    target = estate.target()
    database = target.platform.database.model_copy(update={"dr_replica": None})  # type: ignore[union-attr]
    platform = estate.platform(database=database.model_dump())
    try:
        platform.fail_over_to("northeurope")
        (put,) = estate.arm.requests_to(r"/flexibleServers/erp-pg-geo-latest$", "PUT")
        assert put.body["properties"]["createMode"] == "GeoRestore"
        # ARM requires a point for a geo-restore: "now" restores the latest geo-backup
        # (what the Azure CLI sends when none is given)
        sent = datetime.fromisoformat(put.body["properties"]["pointInTimeUTC"])
        assert abs((datetime.now(UTC) - sent).total_seconds()) < 120
        assert platform.application_database() == "erp-pg-geo-latest"
    finally:
        platform.close()


def test_the_fake_refuses_a_geo_restore_without_a_point_in_time(estate: AksEstate) -> None:
    """ServerProperties model docs: pointInTimeUTC "is required when 'createMode' is
    'PointInTimeRestore' or 'GeoRestore' or 'ReviveDropped'"."""
    source = (
        f"/subscriptions/{SUB}/resourceGroups/{DB_RG}/providers/"
        "Microsoft.DBforPostgreSQL/flexibleServers/erp-pg"
    )
    body = {"location": "northeurope",
            "properties": {"createMode": "GeoRestore", "sourceServerResourceId": source}}
    code, _, error = estate.arm._pg_create(SUB, DB_RG, "erp-pg-geo-x", body)
    assert code == 400 and "pointInTimeUTC is required" in error["error"]["message"]


def test_a_private_access_server_is_geo_restored_into_a_subnet_of_its_own(
    estate: AksEstate,
) -> None:
    """network "is required to be passed only in case you want the server to be Private
    access server": a VNet-integrated source needs one for its restore, from the target
    file -- without it the run says which fields to set and sends nothing."""
    primary = estate.arm.servers[(DB_RG.lower(), "erp-pg")]["properties"]
    primary["network"] = {"publicNetworkAccess": "Disabled", "delegatedSubnetResourceId": "s1"}
    target = estate.target()
    database = target.platform.database.model_copy(update={"dr_replica": None})  # type: ignore[union-attr]
    platform = estate.platform(database=database.model_dump())
    try:
        with pytest.raises(PlatformError, match=r"database\.geo_restore_subnet_id"):
            platform.geo_restore()
        assert estate.arm.requests_to(r"/flexibleServers/erp-pg-geo-latest$", "PUT") == []
    finally:
        platform.close()
    subnet = "/subscriptions/x/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/pg"
    zone = "/subscriptions/x/resourceGroups/net/providers/Microsoft.Network/privateDnsZones/z"
    configured = database.model_copy(
        update={"geo_restore_subnet_id": subnet, "geo_restore_private_dns_zone_id": zone}
    )
    platform = estate.platform(database=configured.model_dump())
    try:
        assert platform.geo_restore() == "erp-pg-geo-latest"
        (put,) = estate.arm.requests_to(r"/flexibleServers/erp-pg-geo-latest$", "PUT")
        assert put.body["properties"]["network"] == {
            "delegatedSubnetResourceId": subnet, "privateDnsZoneArmResourceId": zone,
        }  # fmt: skip
    finally:
        platform.close()


def test_a_failed_geo_restore_is_loud(aks: AzurePlatform, estate: AksEstate) -> None:
    from ledgerdrill.platforms.azure.lro import AzureOperationError

    estate.arm.fail_next("geo-restore", "GeoBackupNotAvailable", "no geo-redundant backup")
    with pytest.raises(AzureOperationError) as info:
        aks.geo_restore()
    assert info.value.code == "GeoBackupNotAvailable"


def test_standalone_promotion_with_a_virtual_endpoint_is_a_config_error(
    estate: AksEstate,
) -> None:
    from pydantic import ValidationError

    database = estate.target().platform.database.model_dump()  # type: ignore[union-attr]
    with pytest.raises((ValidationError, ConfigError), match="writer endpoint follows only"):
        estate.target(database={**database, "promote_mode": "Standalone"})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:4443", "https://management.azure.com", "https://10.0.0.5:443"]
)
def test_an_injected_endpoint_is_refused_unless_https_on_loopback(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    from ledgerdrill.platforms.azure import clients

    monkeypatch.setattr(clients._Injected, "arm", None)
    with pytest.raises(ConfigError, match="not https on a loopback address"):
        clients.use_arm(clients.ArmOverride(url, "x.crt", None))
    assert clients._Injected.arm is None  # the normal case: real ARM, DefaultAzureCredential


def test_the_plan_says_when_the_test_endpoint_is_in_use(
    estate: AksEstate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerdrill.platforms.azure import clients
    from ledgerdrill.platforms.azure.clients import azure_platform_from_target

    monkeypatch.setattr(clients._Injected, "arm", None)
    clients.use_arm(estate.arm_server.override())
    target = estate.target(arm_endpoint=None, ca_bundle=None)
    platform = azure_platform_from_target(target, target.platform)  # type: ignore[arg-type]
    try:
        assert platform.describe()["arm_endpoint"] == (
            f"TEST FAKE at {estate.arm_server.base_url} (injected by a test)"
        )
        assert platform.settings.ca_bundle == estate.arm_server.ca_file  # verification on
    finally:
        platform.close()


def test_probe_facts_name_the_server_and_the_host_the_erp_uses(aks: AzurePlatform) -> None:
    facts = aks.probe_facts()
    assert facts["entry_url"].startswith("https://127.0.0.1:")  # from the Kubernetes backend
    assert (facts["login"], facts["database"]) == ("accountant", "ledgerdrill")  # its Secret
    assert facts["database_server"] == "erp-pg"
    assert facts["database_host"] == "erp-pg-ve.writer.postgres.database.azure.com"
    aks.switch_application_database(aks.restore_to_point_in_time("2026-11-30T21:00:00Z"))
    facts = aks.probe_facts()  # a restored server is outside the endpoint: its own host
    assert facts["database_server"] == "erp-pg-pitr-20261130210000"
    assert facts["database_host"] == "erp-pg-pitr-20261130210000.postgres.database.azure.com"
