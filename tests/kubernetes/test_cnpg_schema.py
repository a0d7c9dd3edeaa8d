"""CloudNativePG and Barman Cloud resources against the schemas of the pinned CRDs
(``ledgerdrill.testing.fakeapi.cnpg_schema``): our manifests, the objects the
fake API server is seeded with, and what the backend creates, through the fake, which
refuses and drops what the real API server refuses and drops."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_cluster import fake_cluster, fake_clusters
from kubernetes.client.exceptions import ApiException

from kube_witness import assert_nothing_dropped
from ledgerdrill.testing.fakeapi import cnpg_schema
from ledgerdrill.testing.fakeapi.seed import seed_reference_stack
from ledgerdrill.testing.fakeapi.server import FakeKubernetes

REPO = Path(__file__).resolve().parents[2]


def custom_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and (doc["apiVersion"], doc["kind"]) in cnpg_schema.SCHEMAS:
                found.append((f"{path.relative_to(REPO)}:{doc['kind']}", doc))
    return found


DOCS = custom_documents()


def test_every_kind_we_ship_is_checked() -> None:
    shipped = {(d["apiVersion"], d["kind"]) for _, d in DOCS}
    assert shipped == set(cnpg_schema.SCHEMAS)


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[w for w, _ in DOCS])
def test_every_shipped_custom_resource_is_valid_and_fully_known(doc: dict[str, Any]) -> None:
    assert cnpg_schema.problems(doc) == []


def _doc(kind: str, path: str = "kind/database.yaml") -> dict[str, Any]:
    docs = yaml.safe_load_all((REPO / "deploy" / path).read_text())
    return copy.deepcopy(next(d for d in docs if d and d["kind"] == kind))


@pytest.mark.parametrize(
    ("kind", "break_it", "path", "unknown"),
    [
        ("Cluster", lambda s: s.update(instance=3), "spec.instance", True),
        ("Cluster", lambda s: s.update(instances=0), "spec.instances", False),
        ("Cluster", lambda s: s["postgresql"]["synchronous"].pop("number"),
         "spec.postgresql.synchronous.number", False),
        ("Cluster", lambda s: s["postgresql"]["synchronous"].update(method="all"),
         "spec.postgresql.synchronous.method", False),
        ("Cluster", lambda s: s["plugins"][0].update(isWALArchiver="yes"),
         "spec.plugins[0].isWALArchiver", False),
        ("Cluster", lambda s: s["storage"].update(size=1), "spec.storage.size", False),
        ("ScheduledBackup", lambda s: s.update(method="plugins"), "spec.method", False),
        ("ScheduledBackup", lambda s: s.pop("schedule"), "spec.schedule", False),
        ("ObjectStore", lambda s: s.update(retentionPolicy="7 days"),
         "spec.retentionPolicy", False),
        ("ObjectStore", lambda s: s["configuration"].update(destinationPath=""),
         "spec.configuration.destinationPath", False),
        ("ObjectStore", lambda s: s["configuration"]["wal"].update(compression="zip"),
         "spec.configuration.wal.compression", False),
        ("ObjectStore", lambda s: s["configuration"].update(serverName="db"),
         "spec.configuration.serverName", False),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("spec") else None,
)  # fmt: skip
def test_a_broken_resource_is_caught_where_it_is_broken(
    kind: str, break_it: Any, path: str, unknown: bool
) -> None:
    doc = _doc(kind)
    break_it(doc["spec"])
    found = cnpg_schema.problems(doc)
    assert [(p.path, p.unknown) for p in found] == [(path, unknown)], found


def test_the_fake_is_seeded_with_valid_resources() -> None:
    primary, dr = FakeKubernetes(), FakeKubernetes()  # not started: seeded in the store
    seed_reference_stack(primary)
    seed_reference_stack(dr, cluster="dr", region="dr", erp_replicas=0, replica_of="primary")
    seeded = [
        obj
        for fake in (primary, dr)
        for coll in ("postgresql.cnpg.io/clusters", "barmancloud.cnpg.io/objectstores")
        for obj in fake.store.list(coll, None)
    ]
    assert {o["kind"] for o in seeded} == {"Cluster", "ObjectStore"}, seeded
    assert seeded, "the seed made no CloudNativePG resources: the check proves nothing"
    for obj in seeded:
        assert cnpg_schema.problems(obj) == [], obj["metadata"]["name"]


def test_the_fake_refuses_a_wrong_value_with_the_api_servers_422(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, backend):
        body = _doc("Cluster")
        body["metadata"]["name"] = "typo"
        body["spec"]["instances"] = "three"
        with pytest.raises(ApiException) as refused:
            backend.kube.custom.create_namespaced_custom_object(
                "postgresql.cnpg.io", "v1", "ledgerdrill", "clusters", body
            )
        assert refused.value.status == 422
        message = json.loads(refused.value.body)["message"]
        assert message.startswith(
            'Cluster.postgresql.cnpg.io "typo" is invalid: spec.instances: Invalid value: "three"'
        ), message
        assert fake.store.get("postgresql.cnpg.io/clusters", "ledgerdrill", "typo") is None


def test_the_fake_drops_an_unknown_field_with_a_warning_as_the_api_server_does(
    tmp_path: Path,
) -> None:
    with fake_clusters(tmp_path) as clusters:
        fake = clusters.primary
        body = _doc("Cluster")
        body["metadata"]["name"] = "extra"
        body["spec"]["replicas"] = 3  # not a field: instances
        api = _custom_api(fake, tmp_path)
        _, status, headers = api.create_namespaced_custom_object_with_http_info(
            "postgresql.cnpg.io", "v1", "ledgerdrill", "clusters", body
        )
        assert status == 201
        assert headers.get("Warning") == '299 - "unknown field \\"spec.replicas\\""'
        stored = fake.store.get("postgresql.cnpg.io/clusters", "ledgerdrill", "extra")
        assert stored is not None and "replicas" not in stored["spec"]
        assert fake.unknown_fields == ["Cluster extra: spec.replicas"]
        fake.unknown_fields.clear()  # seen: the fixture's own check would fail on it


def _custom_api(fake: FakeKubernetes, folder: Path) -> Any:
    from kubernetes import client, config

    api_client = config.new_client_from_config(
        config_file=str(fake.kubeconfig(folder / "kubeconfig-raw"))
    )
    return client.CustomObjectsApi(api_client)


def test_the_fixtures_check_fails_on_a_built_in_object_the_api_server_would_refuse() -> None:
    fake = FakeKubernetes()  # the check reads what clients wrote; nothing needs serving
    deployment = next(
        d
        for d in yaml.safe_load_all((REPO / "deploy" / "kind" / "erp.yaml").read_text())
        if d and d["kind"] == "Deployment"
    )
    fake.written.append(copy.deepcopy(deployment))
    assert_nothing_dropped(fake)  # as shipped: valid
    deployment["spec"]["replica"] = 3  # not a field: replicas
    fake.written.append(deployment)
    with pytest.raises(AssertionError, match="would refuse"):
        assert_nothing_dropped(fake)
