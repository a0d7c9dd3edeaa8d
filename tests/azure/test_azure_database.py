from __future__ import annotations

import threading
from pathlib import Path

import pytest
from arm_helpers import DB_RG, SUB, make_platform

from ledgerdrill.errors import PlatformError, UnsupportedCapability
from ledgerdrill.faults import DatabaseFailover
from ledgerdrill.platforms.azure import AzurePlatform
from ledgerdrill.platforms.azure.lro import AzureOperationError, OperationTimeout
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.testing.fake_arm import FakeArm, FakeArmServer


def test_forced_failover_swaps_zones_and_is_watched(platform: AzurePlatform, arm: FakeArm) -> None:
    topo = platform.database_topology()
    assert topo.primary is not None and topo.primary.name == "erp-pg/zone-1"
    fault = DatabaseFailover(platform, "crash")
    fault.prepare()
    fault.inject()
    (call,) = arm.requests_to(r"/flexibleServers/erp-pg/restart$", "POST")
    assert call.body == {"restartWithFailover": True, "failoverMode": "ForcedFailover"}
    assert call.query["api-version"] == "2026-10-01"
    assert platform.database_topology().primary.name == "erp-pg/zone-2"  # type: ignore[union-attr]
    assert "erp-pg/zone-1" in fault.verify().summary
    fault.revert()  # Azure rebuilds the old primary as standby: revert waits for it
    statuses = [e.attributes.get("status") for e in platform.events_between(None, None)]
    assert "InProgress" in statuses and "Succeeded" in statuses


def test_planned_switchover_mode(platform: AzurePlatform, arm: FakeArm) -> None:
    assert platform.switchover() == "erp-pg/zone-2"
    assert arm.requests_to(r"/restart$")[0].body["failoverMode"] == "PlannedFailover"


def test_failover_refused_by_arm_is_translated(platform: AzurePlatform, arm: FakeArm) -> None:
    arm.fail_next("failover", "HAFailoverNotAllowed", "no standby", at_start=True)
    with pytest.raises(AzureOperationError) as info:
        platform.crash_primary()
    assert info.value.code == "HAFailoverNotAllowed"


def test_point_in_time_restore_creates_a_new_server(platform: AzurePlatform, arm: FakeArm) -> None:
    switched: list[tuple[str, str]] = []
    platform.connection_switch = lambda name, fqdn: switched.append((name, fqdn))
    name = platform.restore_to_point_in_time("2026-01-31T22:59:00+00:00")
    assert name == "erp-pg-pitr-20260131225900"
    (put,) = arm.requests_to(rf"/flexibleServers/{name}$", "PUT")
    props = put.body["properties"]
    assert props["createMode"] == "PointInTimeRestore"
    assert props["pointInTimeUTC"].startswith("2026-01-31T22:59:00")
    assert props["sourceServerResourceId"].endswith(
        f"/resourceGroups/{DB_RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/erp-pg"
    )
    assert arm.servers[(DB_RG.lower(), name)]["properties"]["state"] == "Ready"
    platform.switch_application_database(name)
    assert platform.application_database() == name
    assert switched == [(name, f"{name}.postgres.database.azure.com")]
    # idempotent: an existing restored server is reused, not created again
    assert platform.restore_to_point_in_time("2026-01-31T22:59:00+00:00") == name
    assert len(arm.requests_to(rf"/flexibleServers/{name}$", "PUT")) == 1


def test_failed_restore_is_a_failed_operation(platform: AzurePlatform, arm: FakeArm) -> None:
    arm.fail_next("restore", "RestoreFailed", "point in time outside retention")
    with pytest.raises(AzureOperationError) as info:
        platform.restore_to_point_in_time("2026-01-31T22:00:00+00:00")
    assert info.value.code == "RestoreFailed"
    assert [r.status for r in platform.operations.records()] == ["failed"]


def test_dr_failover_promotes_the_replica_and_fails_back(
    platform: AzurePlatform, arm: FakeArm
) -> None:
    platform.region_outage("westeurope")
    assert platform.region_state("westeurope") is NodeState.STOPPED
    (call,) = arm.requests_to(r"/poweroff$")
    assert call.body == {"instanceIds": ["0", "1", "2", "3"]}  # never an empty body
    platform.fail_over_to("northeurope")
    (patch,) = arm.requests_to(r"/flexibleServers/erp-pg-dr$", "PATCH")
    assert patch.body == {
        "properties": {"replica": {"promoteMode": "Switchover", "promoteOption": "Planned"}}
    }
    assert platform.application_database() == "erp-pg-dr"
    platform.restore_region("westeurope")
    assert platform.region_state("westeurope") is NodeState.RUNNING
    assert arm.servers[(DB_RG.lower(), "erp-pg")]["properties"]["replicationRole"] == "Primary"
    assert platform.application_database() == "erp-pg"


def test_no_database_means_no_database_capability(
    arm: FakeArm, arm_server: FakeArmServer, tmp_path: Path
) -> None:
    from ledgerdrill.platforms.base import DatabaseControl, RegionControl

    p = make_platform(arm_server, tmp_path, database=None)
    assert not p.supports(DatabaseControl) and not p.supports(RegionControl)
    with pytest.raises(UnsupportedCapability, match="names no PostgreSQL"):
        p.capability(DatabaseControl)


def test_poller_timeout_leaves_a_resumable_record(
    platform: AzurePlatform, arm: FakeArm, arm_server: FakeArmServer, tmp_path: Path
) -> None:
    arm.frozen = True  # ARM accepts the power-off but it never finishes
    platform.settings = platform.settings.model_copy(update={"operation_timeout": 0.3})
    with pytest.raises(OperationTimeout, match=r"not finished within 0\.3 s"):
        platform.crash_node("aks-system-1")
    (record,) = platform.operations.pending()
    assert record.status == "timed-out" and record.continuation_token
    assert any(e.name == "timed-out" for e in platform.events_between(None, None))
    # "the run is killed": a new platform (as cleanup builds it) resumes from the token
    arm.frozen = False
    fresh = make_platform(arm_server, tmp_path)
    assert fresh.runner.settle_pending(5) == [record.purpose]
    assert fresh.operations.pending() == []
    assert (
        arm.scale_sets[("mc_erp-prod_aks-erp_westeurope", "aks-system-12345678-vmss")]["1"]["power"]
        == "stopped"
    )
    polls = arm.requests_to(r"/fake-operations/")
    assert polls, "the resumed poller polled ARM's operation URL"
    fresh.restore_node("aks-system-1")
    assert fresh.node_state("aks-system-1") is NodeState.RUNNING


def test_settings_refuse_a_group_not_allowed(arm_server: FakeArmServer, tmp_path: Path) -> None:
    from arm_helpers import settings_for
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not in allowed_resource_groups"):
        settings_for(
            arm_server.base_url, arm_server.ca_file, tmp_path, allowed_resource_groups=[DB_RG]
        )
    assert SUB


def test_settle_waits_for_azure_to_rebuild_the_standby(
    platform: AzurePlatform, arm: FakeArm
) -> None:
    # after a forced failover Azure rebuilds the old primary as the standby by itself:
    # the baseline comparison must read the platform once it has, not while it is not
    ha = arm.servers[(DB_RG.lower(), "erp-pg")]["properties"]["highAvailability"]
    ha["state"] = "ReplicatingData"
    standby = next(m for m in platform.database_topology().members if m.name.endswith("zone-2"))
    assert standby.role == "stopped" and standby.streaming is None
    healed = threading.Timer(0.4, lambda: ha.update(state="Healthy"))
    healed.start()
    try:
        done = platform.settle()
    finally:
        healed.cancel()
    assert done == ["standby erp-pg/zone-2 rebuilt by Azure (high availability Healthy)"]
    standby = next(m for m in platform.database_topology().members if m.name.endswith("zone-2"))
    assert standby.role == "sync-standby" and standby.streaming is True


def test_settle_names_the_state_when_the_standby_is_not_rebuilt_in_time(
    arm_server: FakeArmServer, tmp_path: Path
) -> None:
    platform = make_platform(arm_server, tmp_path, failover_timeout=0.3)
    ha = arm_server.arm.servers[(DB_RG.lower(), "erp-pg")]["properties"]["highAvailability"]
    ha["state"] = "CreatingStandby"
    with pytest.raises(PlatformError, match="high availability state CreatingStandby"):
        platform.settle()
