"""Point-in-time restore on CloudNativePG, and pointing the ERP at the restored cluster.

- database_time_iso: the API server's clock (the ``Date`` header of ``GET /version``), floored
  to the second. The database pods run on nodes of the same cluster, whose clocks the
  API server's agrees with (kind: one host clock; AKS: NTP); the floor makes the restore
  point err towards *before* the bad change. Refused (``UnsupportedCapability``) when the
  Cluster archives no WAL (neither the Barman Cloud plugin nor the in-tree
  ``spec.backup.barmanObjectStore``; ``archive.py``): then there is nothing to restore
  from, and the fault must know that before it changes anything.
- restore_to_point_in_time: a new ``Cluster`` ``<cluster>-pitr-<UTC time>`` bootstrapped
  with ``bootstrap.recovery`` from an ``externalClusters`` entry on the same archive
  (``serverName`` = the original cluster's) and ``recoveryTarget.targetTime``, the layout
  of CloudNativePG's "Recovery" documentation and of the plugin's; it archives its own
  WAL the same way, under its own server name. Waits until every instance is ready.
- switch_application_database: the ERP's database host ``<old>-rw`` becomes ``<new>-rw``
  wherever the ERP reads it: the reference ERP's ``erp.json`` in the Secret its pods
  mount (PUT with the resourceVersion read), and container env values (the official
  Odoo image reads ``HOST``); then a rolling restart (the ``restartedAt`` template
  annotation ``kubectl rollout restart`` writes), waited for.
- run_bad_change: unsupported. It needs a SQL client inside the cluster (pod exec or a
  Job running psql), and the fake API server runs no PostgreSQL that could show the
  change really happened; a drill that cannot verify its fault is not run.

The restored cluster is left running after the drill (it holds the good data); the
target's ``database_cluster`` still names the original for the other database drills.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from kubernetes import client
from ledgerdrill.errors import PlatformError, UnsupportedCapability
from ledgerdrill.platforms.kubernetes.api import (
    CNPG_GROUP,
    CNPG_PLURAL,
    CNPG_VERSION,
    STRATEGIC,
    Kube,
    call,
    retry_conflicts,
    status_of,
    wait_for,
)
from ledgerdrill.platforms.kubernetes.archive import BARMAN_PLUGIN, WalArchive, wal_archive
from ledgerdrill.targets import KubernetesPlatformSettings

RESTORED_FROM = "ledgerdrill.io/restored-from"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ERP_CONFIG_KEY = "erp.json"
_NO_SQL = (
    "running SQL needs a SQL client inside the cluster (pod exec or a psql Job); "
    "this backend does not run statements, so a bad change cannot be injected and verified"
)


def _host_token(name: str) -> re.Pattern[str]:
    """``<name>-rw`` as a whole host name (not inside ``<name>-rw-x`` or ``x<name>-rw``)."""
    return re.compile(rf"(?<![\w-]){re.escape(name)}-rw(?![\w-])")


class PitrOps:
    kube: Kube
    settings: KubernetesPlatformSettings
    kind: str

    if TYPE_CHECKING:  # provided by DatabaseOps and WorkloadOps in KubernetesPlatform

        def _cluster(self) -> dict[str, Any]: ...
        def _rolled_out(self) -> bool: ...
        def _deployment(self) -> client.V1Deployment: ...

    @property
    def _pitr_ns(self) -> str:
        return self.settings.database_namespace or self.settings.namespace

    def _wal_archive(self) -> WalArchive:
        archive = wal_archive(self._cluster())
        if archive is None:
            raise UnsupportedCapability(
                self.kind,
                "DatabaseControl.restore_to_point_in_time",
                f"CNPG cluster {self.settings.database_cluster} archives no WAL: neither the "
                f"{BARMAN_PLUGIN} plugin (spec.plugins, isWALArchiver) nor "
                "spec.backup.barmanObjectStore (no WAL archive to restore from)",
            )
        return archive

    def database_time_iso(self) -> str:
        self._wal_archive()
        _, _, headers = call(
            "read the API server's clock", client.VersionApi(self.kube.api).get_code_with_http_info
        )
        date = (headers or {}).get("Date") or (headers or {}).get("date")
        if not date:
            raise PlatformError("the API server sent no Date header: no clock to restore to")
        return parsedate_to_datetime(str(date)).astimezone(UTC).isoformat()

    def run_bad_change(self, sql: str) -> int:
        raise UnsupportedCapability(self.kind, "DatabaseControl.run_bad_change", _NO_SQL)

    def restore_to_point_in_time(self, point_in_time_iso: str) -> str:
        source = self._cluster()
        archive = self._wal_archive()
        origin = str(self.settings.database_cluster)
        when = datetime.fromisoformat(point_in_time_iso).astimezone(UTC)
        name = f"{origin}-pitr-{when:%Y%m%dt%H%M%S}"
        spec = source.get("spec") or {}
        body = {
            "apiVersion": f"{CNPG_GROUP}/{CNPG_VERSION}",
            "kind": "Cluster",
            "metadata": {"name": name, "labels": {RESTORED_FROM: origin}},
            "spec": {
                **{
                    k: spec[k]
                    for k in ("instances", "imageName", "storage", "postgresql", "affinity")
                    if k in spec
                },
                "bootstrap": {
                    "recovery": {
                        "source": "origin",
                        "recoveryTarget": {"targetTime": when.isoformat()},
                    }
                },
                "externalClusters": [archive.recovery_source("origin")],
                **archive.archiving_for(name),
            },
        }
        ns = self._pitr_ns
        try:
            call(
                f"create CNPG cluster {ns}/{name}",
                lambda: self.kube.custom.create_namespaced_custom_object(
                    CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, body
                ),
            )
        except PlatformError as exc:
            # 409 AlreadyExists: an earlier, interrupted restore to the same point made
            # it (the name is the point's): wait for that one, never make a second
            if status_of(exc) != 409:
                raise

        def ready() -> bool:
            found = call(
                f"read CNPG cluster {ns}/{name}",
                lambda: self.kube.custom.get_namespaced_custom_object(
                    CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, name
                ),
            )
            status = found.get("status") or {} if isinstance(found, dict) else {}
            wanted = int(spec.get("instances") or 1)
            return int(status.get("readyInstances") or 0) >= wanted and bool(
                status.get("currentPrimary")
            )

        wait_for(
            f"restored cluster {name} to be ready",
            ready,
            self.settings.wait_timeout,
            self.settings.poll_interval,
        )
        return name

    # -- where the ERP's database is ------------------------------------------------------
    def _erp_config_secret(self) -> client.V1Secret | None:
        dep = self._deployment()
        pod = dep.spec.template.spec if dep.spec and dep.spec.template else None
        for volume in (pod.volumes if pod else None) or []:
            if volume.secret is None or not volume.secret.secret_name:
                continue
            secret = self._read_secret(str(volume.secret.secret_name))
            if ERP_CONFIG_KEY in (secret.data or {}):
                return secret
        return None

    def _read_secret(self, name: str) -> client.V1Secret:
        ns = self.settings.namespace
        return call(
            f"read secret {ns}/{name}", lambda: self.kube.core.read_namespaced_secret(name, ns)
        )

    def _erp_dsn(self) -> str:
        secret = self._erp_config_secret()
        if secret is not None:
            config = json.loads(base64.b64decode((secret.data or {})[ERP_CONFIG_KEY]))
            return str(config.get("dsn") or "")
        dep = self._deployment()
        pod = dep.spec.template.spec if dep.spec and dep.spec.template else None
        return " ".join(
            str(e.value) for c in (pod.containers if pod else []) for e in c.env or [] if e.value
        )

    def application_database(self) -> str:
        """The ``<cluster>-rw`` service the ERP is configured with (the target's
        ``database_cluster`` when the ERP's configuration does not name one)."""
        match = re.search(r"(?<![\w-])([a-z0-9][a-z0-9-]*)-rw(?![\w-])", self._erp_dsn())
        return match.group(0) if match else f"{self.settings.database_cluster}-rw"

    def switch_application_database(self, member: str) -> None:
        old = self.application_database().removesuffix("-rw")
        if old == member:
            return  # already there: idempotent
        token, new_host = _host_token(old), f"{member}-rw"
        changed = self._switch_config_secret(token, new_host)
        changed |= self._switch_env(token, new_host)
        if not changed:
            raise PlatformError(
                f"the ERP deployment {self.settings.erp_deployment} names {old}-rw neither in a "
                f"mounted {ERP_CONFIG_KEY} secret nor in its env: nothing to switch"
            )
        restart = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {RESTARTED_AT: datetime.now(UTC).isoformat()}}
                }
            }
        }
        name, ns = self.settings.erp_deployment, self.settings.namespace
        call(
            f"restart deployment {ns}/{name}",
            lambda: self.kube.apps.patch_namespaced_deployment(
                name, ns, restart, _content_type=STRATEGIC
            ),
        )
        wait_for(
            f"deployment {name} to restart on {new_host}",
            self._rolled_out,
            self.settings.wait_timeout,
            self.settings.poll_interval,
        )

    def _switch_config_secret(self, token: re.Pattern[str], new_host: str) -> bool:
        def attempt() -> bool:
            secret = self._erp_config_secret()
            if secret is None or secret.metadata is None:
                return False
            config = json.loads(base64.b64decode((secret.data or {})[ERP_CONFIG_KEY]))
            dsn = str(config.get("dsn") or "")
            if not token.search(dsn):
                return False
            config["dsn"] = token.sub(new_host, dsn)
            data = dict(secret.data or {})
            data[ERP_CONFIG_KEY] = base64.b64encode(json.dumps(config).encode()).decode()
            secret.data = data
            name, ns = str(secret.metadata.name), self.settings.namespace
            # PUT with the resourceVersion just read: a concurrent writer gets us a 409
            call(
                f"update secret {ns}/{name}",
                lambda: self.kube.core.replace_namespaced_secret(name, ns, secret),
            )
            return True

        return retry_conflicts("switch the ERP's database in its config secret", attempt)

    def _switch_env(self, token: re.Pattern[str], new_host: str) -> bool:
        dep = self._deployment()
        pod = dep.spec.template.spec if dep.spec and dep.spec.template else None
        containers = []
        for c in (pod.containers if pod else []) or []:
            env = [
                {"name": e.name, "value": token.sub(new_host, str(e.value))}
                for e in c.env or []
                if e.value and token.search(str(e.value))
            ]
            if env:
                containers.append({"name": c.name, "env": env})
        if not containers:
            return False
        name, ns = self.settings.erp_deployment, self.settings.namespace
        patch = {"spec": {"template": {"spec": {"containers": containers}}}}
        call(
            f"patch deployment {ns}/{name} env",
            lambda: self.kube.apps.patch_namespaced_deployment(
                name, ns, patch, _content_type=STRATEGIC
            ),
        )
        return True
