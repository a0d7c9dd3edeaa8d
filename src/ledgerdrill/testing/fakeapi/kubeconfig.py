"""One kubeconfig naming several fake API servers: one context per cluster, as
``kind create cluster`` writes ``kind-ledgerdrill`` and ``kind-ledgerdrill-dr``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from ledgerdrill.testing.fakeapi.server import TOKEN, FakeKubernetes


def write_kubeconfig(
    path: Path, contexts: Mapping[str, FakeKubernetes], current: str | None = None
) -> Path:
    """A cluster, a user and a context per entry; ``current`` (default: the first) is
    the current-context."""
    names = list(contexts)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current or names[0],
        "clusters": [{"name": n, "cluster": {"server": fake.url}} for n, fake in contexts.items()],
        "users": [{"name": n, "user": {"token": TOKEN}} for n in names],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in names],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
