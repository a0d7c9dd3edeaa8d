"""Every built-in object under deploy/ is valid for the pinned Kubernetes version, checked
against the Kubernetes OpenAPI schemas (kubernetes-validate ships them; strict: an
unknown field is an error, as ``kubectl apply --validate=strict`` makes it). Custom
resources have no schema there: they are listed, so a new one cannot slip past unseen."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# CloudNativePG's resources and the Barman Cloud plugin's: checked against the schemas of
# their pinned CRDs instead (test_cnpg_schema.py)
CUSTOM = {
    "postgresql.cnpg.io/v1": {"Cluster", "ScheduledBackup"},
    "barmancloud.cnpg.io/v1": {"ObjectStore"},
}


def pinned_version() -> str:
    for line in (DEPLOY / "kind" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("versions.env pins no KUBERNETES_VERSION")


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.relative_to(REPO)}:{doc.get('kind')}", doc))
    return found


BUILT_IN = [(where, doc) for where, doc in documents() if doc["apiVersion"] not in CUSTOM]


@pytest.mark.parametrize("doc", [d for _, d in BUILT_IN], ids=[w for w, _ in BUILT_IN])
def test_every_built_in_object_is_valid_for_the_pinned_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, pinned_version(), strict=True)


def test_the_only_objects_without_a_kubernetes_schema_are_the_listed_custom_ones() -> None:
    custom = {(d["apiVersion"], d["kind"]) for _, d in documents() if d["apiVersion"] in CUSTOM}
    assert custom == {(api, kind) for api, kinds in CUSTOM.items() for kind in kinds}


def test_a_broken_manifest_fails_the_check() -> None:
    deployment = next(d for w, d in BUILT_IN if w.endswith("erp.yaml:Deployment"))
    typo = copy.deepcopy(deployment)
    typo["spec"]["replica"] = 3  # not a field: replicas
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, pinned_version(), strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["securityContext"]["fsGroup"] = "erp"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, pinned_version(), strict=True)
