"""Point-in-time restore on CloudNativePG against the fake API server: the restore
Cluster's shape, waiting for it, and switching the ERP's database host."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledgerdrill.errors import PlatformError, UnsupportedCapability
from ledgerdrill.faults import DatabaseCorruption
from ledgerdrill.platforms.kubernetes.api import call
from ledgerdrill.platforms.kubernetes.archive import BARMAN_PLUGIN
from ledgerdrill.runbook import PointInTimeRestore

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import fake_cluster

CNPG, NS = "postgresql.cnpg.io/clusters", "ledgerdrill"


def _erp_dsn(fake: object) -> str:
    secret = fake.store.get("core/secrets", NS, "ledgerdrill-erp-config")  # type: ignore[attr-defined]
    return str(json.loads(base64.b64decode(secret["data"]["erp.json"]))["dsn"])


def test_database_time_is_the_api_servers_clock_floored_to_the_second(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_, platform):
        before = datetime.now(UTC).replace(microsecond=0)
        told = datetime.fromisoformat(platform.database_time_iso())
        assert told.tzinfo is not None and told.microsecond == 0
        assert before - timedelta(seconds=1) <= told <= datetime.now(UTC)


def test_restore_creates_a_recovery_cluster_and_switches_the_erp(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        point = platform.database_time_iso()
        assert platform.application_database() == "ledgerdrill-db-rw"
        step = PointInTimeRestore(platform, point)
        step.run()
        restored = str(step.server)
        cluster = fake.store.get(CNPG, NS, restored)
        assert cluster is not None and restored.startswith("ledgerdrill-db-pitr-")
        recovery = cluster["spec"]["bootstrap"]["recovery"]
        assert recovery["recoveryTarget"]["targetTime"] == point
        # read through the Barman Cloud plugin, from the original's folder of the bucket
        origin = cluster["spec"]["externalClusters"][0]
        assert origin["name"] == recovery["source"]
        assert origin["plugin"] == {"name": BARMAN_PLUGIN, "parameters": {
            "barmanObjectName": "ledgerdrill-backups", "serverName": "ledgerdrill-db"}}  # fmt: skip
        # its own WAL archived by the plugin too, never on the original's server name
        [archiver] = cluster["spec"]["plugins"]
        assert archiver["isWALArchiver"] and archiver["parameters"]["serverName"] == restored
        assert "backup" not in cluster["spec"]  # the webhook refuses both layouts at once
        assert cluster["status"]["readyInstances"] == 3
        dsn = _erp_dsn(fake)
        assert f"@{restored}-rw.ledgerdrill.svc:5432/app" in dsn
        assert "ledgerdrill-db-rw" not in dsn
        assert platform.application_database() == f"{restored}-rw"
        template = fake.store.get("apps/deployments", NS, "ledgerdrill-erp")["spec"]["template"]
        assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
        fake.wait_settled()
        versions = [r[0] for r in fake.requests if r[1].endswith("/ledgerdrill-erp-config")]
        assert "PUT" in versions  # optimistic locking: the read resourceVersion went back
        puts = len([r for r in fake.requests if r[0] == "PUT"])
        platform.switch_application_database(restored)  # idempotent: nothing written
        assert len([r for r in fake.requests if r[0] == "PUT"]) == puts


def test_a_bad_target_time_is_refused_by_admission(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        body = fake.store.get(CNPG, NS, "ledgerdrill-db")
        body["metadata"] = {"name": "bad-restore"}
        body["spec"]["bootstrap"] = {"recovery": {"source": "nowhere"}}
        body.pop("status")

        def create() -> object:
            return platform.kube.custom.create_namespaced_custom_object(
                "postgresql.cnpg.io", "v1", NS, "clusters", body
            )

        with pytest.raises(PlatformError, match=r"422 Invalid.*missing external cluster"):
            call("create", create)


def test_without_a_wal_archive_the_corruption_drill_skips_before_any_change(
    tmp_path: Path,
) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        fake.store.update(CNPG, NS, "ledgerdrill-db", lambda c: {**c, "spec": {
            k: v for k, v in c["spec"].items() if k != "plugins"}})  # fmt: skip
        fault = DatabaseCorruption(platform, "DELETE FROM account_move")
        with pytest.raises(UnsupportedCapability, match=r"archives no WAL"):
            fault.prepare()
        # and with the archive, prepare works but the statement itself is not run
        fake.store.update(CNPG, NS, "ledgerdrill-db", lambda c: {**c, "spec": {
            **c["spec"], "backup": {"barmanObjectStore": {"destinationPath": "s3://x/"}}}})  # fmt: skip
        fault.prepare()
        with pytest.raises(UnsupportedCapability, match="SQL client"):
            fault.inject()


def test_a_cluster_on_the_in_tree_archive_is_restored_the_in_tree_way(tmp_path: Path) -> None:
    """Clusters made before the plugin (barmanObjectStore, deprecated, still served by
    the pinned operator): the restore reads and archives the same way."""
    store = {"destinationPath": "s3://old/", "endpointURL": "http://minio:9000"}
    with fake_cluster(tmp_path) as (fake, platform):
        fake.store.update(CNPG, NS, "ledgerdrill-db", lambda c: {**c, "spec": {
            **{k: v for k, v in c["spec"].items() if k != "plugins"},
            "backup": {"barmanObjectStore": store}}})  # fmt: skip
        restored = platform.restore_to_point_in_time(platform.database_time_iso())
        spec = fake.store.get(CNPG, NS, restored)["spec"]
        assert spec["externalClusters"][0]["barmanObjectStore"] == {
            **store, "serverName": "ledgerdrill-db"}  # fmt: skip
        assert spec["backup"]["barmanObjectStore"] == {**store, "serverName": restored}
        assert "plugins" not in spec


def test_the_webhook_refuses_two_wal_archivers_as_cloudnativepg_does(tmp_path: Path) -> None:
    """CloudNativePG's validatePluginConfiguration (internal/webhook/v1/cluster_webhook.go):
    a WAL-archiver plugin beside barmanObjectStore, or two WAL-archiver plugins, is 422."""
    with fake_cluster(tmp_path) as (fake, platform):
        body = fake.store.get(CNPG, NS, "ledgerdrill-db")
        body.pop("status")

        def create(name: str, spec: dict[str, object]) -> object:
            wanted = {**body, "metadata": {"name": name}, "spec": {**body["spec"], **spec}}
            return call("create", lambda: platform.kube.custom.create_namespaced_custom_object(
                "postgresql.cnpg.io", "v1", NS, "clusters", wanted))  # fmt: skip

        both = {"backup": {"barmanObjectStore": {"destinationPath": "s3://x/"}}}
        with pytest.raises(PlatformError, match="when barmanObjectStore is configured"):
            create("both", both)
        second = {"name": "other.example.com", "isWALArchiver": True}
        two = {"plugins": [*body["spec"]["plugins"], second]}
        with pytest.raises(PlatformError, match="more than one WAL archiver plugin"):
            create("two", two)
        create("one", {"plugins": [*body["spec"]["plugins"], {**second, "enabled": False}]})


def test_a_restore_from_an_object_store_that_is_gone_never_comes_up(tmp_path: Path) -> None:
    with fake_cluster(tmp_path, wait_timeout="2s") as (fake, platform):
        fake.store.delete("barmancloud.cnpg.io/objectstores", NS, "ledgerdrill-backups")
        with pytest.raises(PlatformError, match="to be ready"):
            platform.restore_to_point_in_time(platform.database_time_iso())
        [restored] = [c for c in fake.store.list(CNPG, NS) if "-pitr-" in c["metadata"]["name"]]
        assert "ObjectStore ledgerdrill-backups" in restored["status"]["phase"]


def test_a_restore_asked_again_for_the_same_point_reuses_the_first(tmp_path: Path) -> None:
    # cleanup finishing a step a killed run left half done asks for the same point
    # again: the API server refuses a second create (409 AlreadyExists); the backend
    # waits for the first cluster instead of failing or making another
    with fake_cluster(tmp_path) as (fake, platform):
        point = platform.database_time_iso()
        first = platform.restore_to_point_in_time(point)
        again = platform.restore_to_point_in_time(point)
        assert again == first
        names = [c["metadata"]["name"] for c in fake.store.list(CNPG, NS)]
        assert names.count(first) == 1 and len([n for n in names if "-pitr-" in n]) == 1
