"""Where a CloudNativePG cluster archives its WAL, and how a restore reads it back.

Two layouts, both read here so the backend works on the clusters users already have:

- the **Barman Cloud plugin** (what ``deploy/kind`` ships): ``spec.plugins`` holds
  ``barman-cloud.cloudnative-pg.io`` with ``isWALArchiver: true`` and the parameter
  ``barmanObjectName``, the ``ObjectStore`` (``barmancloud.cnpg.io/v1``) that says where
  the bucket is; a restore names it in an ``externalClusters[].plugin`` entry with the
  source's ``serverName`` (plugin docs, ``web/docs/usage.md`` "Restoring a Cluster";
  ``serverName`` goes in the plugin's parameters, never in the ObjectStore);
- the **in-tree** ``spec.backup.barmanObjectStore``: deprecated since CloudNativePG 1.26
  and announced for removal in 1.31 (the plugin's ``web/docs/migration.md``).

CloudNativePG's validating webhook refuses a cluster with both (``spec.plugins``:
"Cannot enable a WAL archiver plugin when barmanObjectStore is configured") and with
more than one WAL-archiver plugin (``internal/webhook/v1/cluster_webhook.go``,
``validatePluginConfiguration``); the fake API server does the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
OBJECT_STORE_GROUP, OBJECT_STORE_VERSION, OBJECT_STORE_PLURAL = (
    "barmancloud.cnpg.io",
    "v1",
    "objectstores",
)


def wal_archiver_plugins(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The enabled ``spec.plugins`` entries that archive WAL (a plugin is enabled unless
    ``enabled: false``)."""
    return [
        p
        for p in spec.get("plugins") or []
        if isinstance(p, dict) and p.get("enabled", True) is not False and p.get("isWALArchiver")
    ]


@dataclass(frozen=True)
class WalArchive:
    """A cluster's WAL archive: the plugin's ObjectStore, or the in-tree object store."""

    cluster: str
    object_store: str | None = None  # plugin: the ObjectStore's name
    server_name: str | None = None  # the folder of this cluster's WAL in the bucket
    in_tree: dict[str, Any] = field(default_factory=dict)  # in-tree: barmanObjectStore

    @property
    def layout(self) -> str:
        return "Barman Cloud plugin" if self.object_store else "in-tree barmanObjectStore"

    def describe(self) -> str:
        if self.object_store:
            return f"ObjectStore {self.object_store} (Barman Cloud plugin)"
        return f"{self.in_tree.get('destinationPath')} (in-tree barmanObjectStore)"

    def recovery_source(self, name: str) -> dict[str, Any]:
        """An ``externalClusters`` entry ``name`` that reads this cluster's archive."""
        server = self.server_name or self.cluster
        if self.object_store:
            parameters = {"barmanObjectName": self.object_store, "serverName": server}
            return {"name": name, "plugin": {"name": BARMAN_PLUGIN, "parameters": parameters}}
        return {"name": name, "barmanObjectStore": {**self.in_tree, "serverName": server}}

    def archiving_for(self, new_cluster: str) -> dict[str, Any]:
        """The spec fragment that makes ``new_cluster`` archive its own WAL to the same
        store, under its own server name (never over its source's)."""
        if self.object_store:
            parameters = {"barmanObjectName": self.object_store, "serverName": new_cluster}
            plugin = {"name": BARMAN_PLUGIN, "isWALArchiver": True, "parameters": parameters}
            return {"plugins": [plugin]}
        return {"backup": {"barmanObjectStore": {**self.in_tree, "serverName": new_cluster}}}


def wal_archive(cluster: dict[str, Any]) -> WalArchive | None:
    """The cluster's WAL archive, or None when it archives no WAL."""
    name = str((cluster.get("metadata") or {}).get("name") or "")
    spec = cluster.get("spec") or {}
    for plugin in wal_archiver_plugins(spec):
        if plugin.get("name") == BARMAN_PLUGIN:
            parameters = plugin.get("parameters") or {}
            store = parameters.get("barmanObjectName")
            if store:
                return WalArchive(name, object_store=str(store),
                                  server_name=parameters.get("serverName"))  # fmt: skip
    store = (spec.get("backup") or {}).get("barmanObjectStore")
    if isinstance(store, dict):
        return WalArchive(name, server_name=store.get("serverName"), in_tree=store)
    return None
