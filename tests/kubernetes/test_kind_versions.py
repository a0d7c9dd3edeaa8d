"""Every chart and image of the kind stack is pinned, in one place
(``deploy/kind/versions.env``), and what the Makefile and manifests use is exactly that.
A rolling tag (``postgresql:17``) or an unpinned chart is a stack that changes under a
game day; a chart's value it no longer reads (Traefik >= 40 takes ``service.spec.type``,
not ``service.type``) is a ``make kind-up`` that waits forever for a LoadBalancer."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ledgerdrill.platforms.kubernetes.archive import wal_archive
from ledgerdrill.testing.fakeapi.seed import POSTGRES_IMAGE as SEEDED

REPO = Path(__file__).resolve().parents[2]
KIND = REPO / "deploy" / "kind"


def versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (KIND / "versions.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def manifest_images() -> list[str]:
    found = []
    for path in sorted(KIND.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found += _images(doc)
    return found


def _images(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [str(v) for k, v in node.items() if k in ("image", "imageName")]
        return own + [i for v in node.values() for i in _images(v)]
    if isinstance(node, list):
        return [i for v in node for i in _images(v)]
    return []


def test_every_image_of_the_stack_is_one_of_the_pinned_versions() -> None:
    pinned = {v for k, v in versions().items() if k.endswith("_IMAGE")}
    ours = {"ledgerdrill/erp:2026.11.0", "ledgerdrill/gameday:dev"}  # built by make kind-up
    images = set(manifest_images())
    assert images - ours <= pinned, images - ours - pinned
    assert versions()["POSTGRES_IMAGE"] in images
    assert versions()["POSTGRES_IMAGE"] == SEEDED  # the fake API server seeds the same


def test_the_database_image_is_immutable() -> None:
    image = versions()["POSTGRES_IMAGE"]
    # a date-stamped build with its digest, not a rolling major or minor tag
    assert re.fullmatch(r"[^:]+:\d+\.\d+-\d{12}-\w+-\w+@sha256:[0-9a-f]{64}", image), image


def test_backups_go_through_the_pinned_barman_cloud_plugin() -> None:
    """No in-tree barmanObjectStore (removed in CloudNativePG 1.31): the plugin, installed
    by make kind-up at the pinned version with cert-manager before it, and the base
    backups scheduled through it."""
    docs = [d for p in sorted(KIND.rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert not [d for d in docs if "barmanObjectStore" in yaml.safe_dump(d)]
    makefile = (REPO / "Makefile").read_text()
    plugin = makefile.index(
        "plugin-barman-cloud/releases/download/v$(BARMAN_CLOUD_PLUGIN_VERSION)/"
    )
    assert makefile.index("cert-manager/releases/download/$(CERT_MANAGER_VERSION)/") < plugin
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions()["BARMAN_CLOUD_PLUGIN_VERSION"])
    scheduled = next(d for d in docs if d.get("kind") == "ScheduledBackup")
    assert scheduled["spec"]["method"] == "plugin"
    assert scheduled["spec"]["pluginConfiguration"]["name"] == "barman-cloud.cloudnative-pg.io"


def test_the_makefile_installs_the_pinned_charts_with_values_they_read() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "include deploy/kind/versions.env" in makefile
    helm = [line for line in makefile.splitlines() if "helm upgrade --install" in line]
    assert len(helm) == 2 and all("--version $(" in line for line in helm)
    assert "--set service.spec.type=NodePort" in makefile
    assert "service.type=" not in makefile
    assert int(versions()["TRAEFIK_CHART_VERSION"].split(".")[0]) >= 40


def test_no_pod_of_the_stack_is_under_two_budgets() -> None:
    """The eviction API refuses a pod under two PodDisruptionBudgets (HTTP 500), and
    CloudNativePG makes its own budgets for database pods (labelled cnpg.io/cluster):
    no manifest budget may select those, nor overlap another manifest budget."""
    docs = [d for p in sorted(KIND.rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    budgets = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    pods = [
        d["spec"]["template"]["metadata"].get("labels", {})
        for d in docs if d.get("kind") in ("Deployment", "StatefulSet")
    ]  # fmt: skip
    pods.append({"cnpg.io/cluster": "ledgerdrill-db", "cnpg.io/instanceRole": "replica"})
    for labels in pods:
        covering = [
            b["metadata"]["name"] for b in budgets
            if all(labels.get(k) == v for k, v in b["spec"]["selector"]["matchLabels"].items())
        ]  # fmt: skip
        if "cnpg.io/cluster" in labels:
            assert not covering, f"database pods already have CloudNativePG's budgets: {covering}"
        assert len(covering) <= 1, (labels, covering)


def test_the_backups_survive_their_pod() -> None:
    """The object store the database archives WAL and base backups to keeps them on a
    claim, not an emptyDir: a regional drill scales it to 0 and a node crash moves it,
    and either would wipe every backup a later point-in-time restore needs."""
    docs = [d for p in sorted(KIND.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    cluster = next(d for d in docs if d.get("kind") == "Cluster")
    archive = wal_archive(cluster)
    assert archive is not None and archive.object_store, "the database archives no WAL"
    store_object = next(
        d for d in docs
        if d.get("kind") == "ObjectStore" and d["metadata"]["name"] == archive.object_store
    )  # fmt: skip
    endpoint = store_object["spec"]["configuration"]["endpointURL"]
    service = endpoint.split("//", 1)[1].split(".", 1)[0]  # http://<service>.<ns>.svc:port
    selector = next(
        d["spec"]["selector"] for d in docs
        if d.get("kind") == "Service" and d["metadata"]["name"] == service
    )  # fmt: skip
    store = next(
        d for d in docs if d.get("kind") == "Deployment"
        and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    )  # fmt: skip
    pod = store["spec"]["template"]["spec"]
    mounted = {m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    volumes = [v for v in pod["volumes"] if v["name"] in mounted]
    assert volumes and all("persistentVolumeClaim" in v for v in volumes), volumes
    claims = {d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    assert {v["persistentVolumeClaim"]["claimName"] for v in volumes} <= claims
    assert store["spec"].get("strategy", {}).get("type") == "Recreate"  # one ReadWriteOnce user
