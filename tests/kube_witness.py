"""What a backend wrote to a fake Kubernetes API server, judged as a real API server would
judge it: used after every test on the fakes (tests/kubernetes/fake_cluster.py,
tests/azure/aks_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate

from ledgerdrill.testing.fakeapi import cnpg_schema
from ledgerdrill.testing.fakeapi.server import FakeKubernetes

REPO = Path(__file__).resolve().parents[1]


def pinned_kubernetes() -> str:
    for line in (REPO / "deploy" / "kind" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("deploy/kind/versions.env pins no KUBERNETES_VERSION")


def assert_nothing_dropped(*fakes: FakeKubernetes) -> None:
    """What the backend wrote, as a real API server would take it. A field of a
    CloudNativePG object its CRD does not know would be dropped, silently for our client:
    the backend would believe it set something it never did (the fake drops and notes
    it). Every built-in object it created or changed must be valid for the pinned
    Kubernetes (its OpenAPI schemas, strict: an unknown field is an error)."""
    dropped = [field for fake in fakes for field in fake.unknown_fields]
    assert not dropped, f"fields a real API server would drop: {dropped}"
    version = pinned_kubernetes()
    for fake in fakes:
        for obj in fake.written:
            if (obj.get("apiVersion"), obj.get("kind")) in cnpg_schema.SCHEMAS:
                continue  # checked by the fake itself, against the CRDs' schemas
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as invalid:
                raise AssertionError(
                    f"the backend wrote a {obj.get('kind')} the API server would refuse: {invalid}"
                ) from None
