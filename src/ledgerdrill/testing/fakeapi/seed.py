"""The reference stack of ``deploy/kind`` as the fake API server's initial state.

Nodes are built from the real kind ``NodeList`` in ``fixtures/`` (renamed and labelled
like ``kind-config.yaml``); the workloads mirror the manifests in ``deploy/kind``.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

from ledgerdrill.platforms.kubernetes import tls
from ledgerdrill.platforms.kubernetes.archive import BARMAN_PLUGIN
from ledgerdrill.testing.fakeapi.cnpg import OBJECT_STORES
from ledgerdrill.testing.fakeapi.server import FakeKubernetes
from ledgerdrill.testing.fakeapi.store import Obj

# the kind stack's pinned operand image (deploy/kind/versions.env, checked by a test)
POSTGRES_IMAGE = (
    "ghcr.io/cloudnative-pg/postgresql:17.9-202602261636-system-bookworm"
    "@sha256:9b98bb640afb610dab530b9afab07bdd0527df1c4e1045cf0a0c07a3db6428f4"
)

FIXTURES = Path(__file__).parent / "fixtures"
ZONE, REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
ERP_LABELS = {"app.kubernetes.io/name": "ledgerdrill-erp"}
# the object store the database archives WAL and base backups to, through the Barman
# Cloud plugin's ObjectStore (deploy/kind/database.yaml)
OBJECT_STORE = "ledgerdrill-backups"
BACKUP_STORE: Obj = {
    "destinationPath": "s3://ledgerdrill-backups/",
    "endpointURL": "http://minio.ledgerdrill.svc:9000",
    "s3Credentials": {
        "accessKeyId": {"name": "backup-credentials", "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": "backup-credentials", "key": "ACCESS_SECRET_KEY"},
    },
}


def _node(template: Obj, name: str, zone: str | None, region: str = "primary") -> Obj:
    node = copy.deepcopy(template)
    node.pop("metadata")
    labels = {k: v for k, v in template["metadata"]["labels"].items() if "node-role" not in k}
    labels["kubernetes.io/hostname"] = name
    node["metadata"] = {"name": name, "labels": labels,
                        "annotations": dict(template["metadata"]["annotations"])}  # fmt: skip
    node["spec"] = {"providerID": f"kind://docker/{name.rsplit('-', 1)[0]}/{name}"}
    if zone is None:
        labels["node-role.kubernetes.io/control-plane"] = ""
        node["spec"]["taints"] = [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
        ]
    else:
        labels.update({ZONE: zone, REGION: region})
    node["status"].pop("images", None)
    return node


def seed_reference_stack(
    fake: FakeKubernetes,
    namespace: str = "ledgerdrill",
    *,
    cluster: str = "ledgerdrill",
    region: str = "primary",
    erp_replicas: int = 3,
    replica_of: str | None = None,
) -> None:
    """Control plane + two workers in each of zone-a/b/c, the ERP (3 replicas, PDB
    minAvailable 2), Redis, a 3-instance CloudNativePG cluster and the TLS secret.

    The DR cluster of ``kind-config-dr.yaml`` is ``cluster="ledgerdrill-dr",
    region="dr", erp_replicas=0, replica_of="ledgerdrill-db"``: a cold ERP and a
    CloudNativePG replica cluster following the primary's database (deploy/kind/dr/).
    """
    raw = json.loads((FIXTURES / "nodelist-kind-cluster-raw.json").read_text())
    template = raw["items"][0]
    store = fake.store
    store.create(
        "core/nodes",
        "",
        {"kind": "Node", "apiVersion": "v1", **_node(template, f"{cluster}-control-plane", None)},
    )
    workers = [f"{cluster}-worker"] + [f"{cluster}-worker{i}" for i in range(2, 7)]
    for i, name in enumerate(workers):
        node = _node(template, name, f"zone-{'abc'[i // 2]}", region)
        store.create("core/nodes", "", {"kind": "Node", "apiVersion": "v1", **node})
    store.create("core/namespaces", "", {"kind": "Namespace", "apiVersion": "v1",
                                         "metadata": {"name": namespace}})  # fmt: skip
    store.create("apps/deployments", namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ledgerdrill-erp", "labels": dict(ERP_LABELS)},
        "spec": {"replicas": erp_replicas, "selector": {"matchLabels": dict(ERP_LABELS)},
                 "template": {"metadata": {"labels": dict(ERP_LABELS)}, "spec": {"containers": [
                     {"name": "erp", "image": "ledgerdrill/erp:2026.11.0",
                      "ports": [{"containerPort": 8069, "protocol": "TCP"}],
                      "volumeMounts": [{"name": "config", "mountPath": "/etc/ledgerdrill"}]}],
                     "volumes": [{"name": "config", "secret": {
                         "secretName": "ledgerdrill-erp-config", "defaultMode": 256}}]}}},
    })  # fmt: skip
    erp_config = {  # deploy/kind/erp-config.yaml: the reference ERP's ErpConfig
        "dsn": f"postgresql://app:fake-password@ledgerdrill-db-rw.{namespace}.svc:5432/app"
        "?target_session_attrs=read-write",
        "redis_url": f"redis://redis.{namespace}.svc:6379/0", "database": "ledgerdrill",
    }  # fmt: skip
    login = {"login": "accountant", "password": "fake-erp-password", "database": "ledgerdrill"}
    store.create("core/secrets", namespace, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "ledgerdrill-erp-login"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in login.items()},
    })  # fmt: skip
    store.create("core/secrets", namespace, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "ledgerdrill-erp-config"},
        "data": {"erp.json": base64.b64encode(json.dumps(erp_config).encode()).decode()},
    })  # fmt: skip
    store.create("policy/poddisruptionbudgets", namespace, {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "ledgerdrill-erp"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": dict(ERP_LABELS)}},
    })  # fmt: skip
    redis = {"app.kubernetes.io/name": "redis"}
    store.create("apps/deployments", namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "redis", "labels": dict(redis)},
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(redis)},
                 "template": {"metadata": {"labels": dict(redis)}, "spec": {"containers": [
                     {"name": "redis", "image": "redis:7.4"}]}}},
    })  # fmt: skip
    database: Obj = {
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "ledgerdrill-db"},
        "spec": {"instances": 3, "imageName": POSTGRES_IMAGE,
                 "postgresql": {"synchronous": {"method": "any", "number": 1}},
                 "storage": {"size": "1Gi"},
                 "plugins": [{"name": BARMAN_PLUGIN, "isWALArchiver": True,
                              "parameters": {"barmanObjectName": OBJECT_STORE}}]},
    }  # fmt: skip
    store.create(OBJECT_STORES, namespace, {
        "apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
        "metadata": {"name": OBJECT_STORE},
        "spec": {"configuration": {**BACKUP_STORE, "wal": {"compression": "gzip"}},
                 "retentionPolicy": "7d"},
    })  # fmt: skip
    if replica_of is not None:  # deploy/kind/dr/database.yaml
        database["spec"]["replica"] = {"enabled": True, "source": replica_of}
        database["spec"]["postgresql"] = {}
        source = {"barmanObjectName": OBJECT_STORE, "serverName": replica_of}
        database["spec"]["externalClusters"] = [
            {"name": replica_of, "plugin": {"name": BARMAN_PLUGIN, "parameters": source}}
        ]
    store.create("postgresql.cnpg.io/clusters", namespace, database)
    pem = tls.make_certificate(["erp.localtest.me"])
    store.create("core/secrets", namespace, {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "ledgerdrill-tls"},
        "data": {"tls.crt": base64.b64encode(pem.cert).decode(),
                 "tls.key": base64.b64encode(pem.key).decode()},
    })  # fmt: skip
    fake.ingress_secret = (namespace, "ledgerdrill-tls")
