"""DatabaseControl on a CloudNativePG ``Cluster`` (``postgresql.cnpg.io/v1``).

- topology: ``status.instanceNames``/``currentPrimary``/``timelineID`` of the Cluster and
  each instance pod's ``cnpg.io/instanceRole`` label and node. A replica is reported
  ``sync-standby`` when the Cluster asks for synchronous replication
  (``spec.postgresql.synchronous`` or ``spec.minSyncReplicas``), else ``async-replica``;
  an instance without a Ready pod is ``stopped``.
- crash_primary: delete the primary's pod with ``gracePeriodSeconds=0``; the operator
  promotes the most advanced replica and re-creates the lost instance, which rejoins
  as a replica (pg_rewind). ``rejoin`` therefore only waits for it to be a Ready replica.
- switchover: what ``kubectl cnpg promote CLUSTER INSTANCE`` does: set
  ``status.targetPrimary`` (and the phase) on the status subresource, then wait for
  ``status.currentPrimary`` to follow.
- point-in-time restore and the ERP's database: ``pitr.py``.
- the database's witness of each promotion (the promoted instance's last replayed
  commit): ``promotion.py``; a crash's is read once the operator has promoted, in the
  background, a switchover's as soon as it is done.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import DatabaseMember, DatabaseTopology
from ledgerdrill.platforms.kubernetes.api import (
    CNPG_GROUP,
    CNPG_PLURAL,
    CNPG_VERSION,
    MERGE,
    Kube,
    call,
    wait_for,
)
from ledgerdrill.platforms.kubernetes.promotion import PromotionLog, replay_point_facts
from ledgerdrill.targets import KubernetesPlatformSettings


class DatabaseOps:
    kube: Kube
    settings: KubernetesPlatformSettings
    kind: str
    promotions: PromotionLog

    @property
    def _db_ns(self) -> str:
        return self.settings.database_namespace or self.settings.namespace

    def _cluster(self) -> dict[str, Any]:
        name, ns = str(self.settings.database_cluster), self._db_ns
        found = call(
            f"read CNPG cluster {ns}/{name}",
            lambda: self.kube.custom.get_namespaced_custom_object(
                CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, name
            ),
        )
        if not isinstance(found, dict):
            raise PlatformError(f"CNPG cluster {ns}/{name}: unexpected answer {found!r:.80}")
        return found

    def _instance_pods(self) -> dict[str, client.V1Pod]:
        name, ns = str(self.settings.database_cluster), self._db_ns
        pods = call(
            f"list pods of {name}",
            lambda: self.kube.core.list_namespaced_pod(
                ns, label_selector=f"cnpg.io/cluster={name}"
            ),
        ).items
        return {str(p.metadata.name): p for p in pods if p.metadata}

    def database_topology(self) -> DatabaseTopology:
        cluster = self._cluster()
        spec, status = cluster.get("spec") or {}, cluster.get("status") or {}
        sync = bool(
            (spec.get("postgresql") or {}).get("synchronous") or spec.get("minSyncReplicas")
        )
        pods = self._instance_pods()
        # the operator's own verdict per instance (``status.instancesStatus``): a replica
        # it counts "healthy" is active and ready, i.e. following the primary; without
        # that field (an older operator) the backend cannot tell whether it streams
        by_status = status.get("instancesStatus")
        healthy = set((by_status or {}).get("healthy") or [])
        members = []
        for inst in status.get("instanceNames") or sorted(pods):
            pod = pods.get(inst)
            streaming: bool | None = None
            if pod is None or not _ready(pod):
                role = "stopped"
            elif (pod.metadata.labels or {}).get("cnpg.io/instanceRole") == "primary":  # type: ignore[union-attr]
                role = "primary"
            else:
                role = "sync-standby" if sync else "async-replica"
                streaming = inst in healthy if isinstance(by_status, dict) else None
            node = str(pod.spec.node_name) if pod is not None and pod.spec else ""
            members.append(
                DatabaseMember(
                    inst, node, role, timeline=int(status.get("timelineID") or 0),
                    streaming=streaming,
                )
            )  # fmt: skip
        return DatabaseTopology(tuple(members))

    def settle(self) -> list[str]:
        """After a drill: wait (``wait_timeout``) for the operator to have rebuilt the
        cluster -- every instance ready and the phase healthy -- so that the baseline
        comparison reads the platform the operator meant to leave. Not healthy in time
        is a ``PlatformError`` naming the phase; the comparison then says what differs."""
        if self.settings.database_cluster is None:
            return []  # no database on this target: nothing for an operator to rebuild
        wanted = "Cluster in healthy state"
        seen: dict[str, Any] = {}

        def healthy() -> bool:
            cluster = self._cluster()
            spec, status = cluster.get("spec") or {}, cluster.get("status") or {}
            seen.update(status)
            instances = int(spec.get("instances") or 0)
            return (
                status.get("phase") == wanted
                and int(status.get("readyInstances") or 0) >= instances
            )

        name = self.settings.database_cluster
        started = datetime.now(UTC)
        try:
            wait_for(
                f"CNPG cluster {name} to be healthy", healthy,
                self.settings.wait_timeout, self.settings.poll_interval,
            )  # fmt: skip
        except PlatformError:
            raise PlatformError(
                f"CNPG cluster {name} was not rebuilt within {self.settings.wait_timeout:g}s: "
                f"phase {seen.get('phase')!r}, {seen.get('readyInstances', 0)} of "
                f"{seen.get('instances', '?')} instances ready"
            ) from None
        waited = (datetime.now(UTC) - started).total_seconds()
        return [f"CNPG cluster {name} healthy (waited {waited:.1f}s)"] if waited >= 1 else []

    def crash_primary(self) -> str:
        primary = self.database_topology().primary
        if primary is None:
            raise PlatformError(f"CNPG cluster {self.settings.database_cluster} has no primary")
        call(
            f"delete primary pod {primary.name}",
            lambda: self.kube.core.delete_namespaced_pod(
                primary.name, self._db_ns, grace_period_seconds=0
            ),
        )
        self.promotions.watch(primary.name, lambda: self._witness_failover(primary.name))
        return primary.name

    def _witness_failover(self, old_primary: str) -> None:
        """Wait for the operator to name a new primary, then read its replay point. No
        promotion within ``wait_timeout`` records nothing: the fault's own check says
        the failover did not happen."""
        deadline = time.monotonic() + self.settings.wait_timeout
        while time.monotonic() < deadline and not self.promotions.closed.is_set():
            try:
                current = (self._cluster().get("status") or {}).get("currentPrimary")
            except PlatformError:
                current = None  # the API server may be busy during a failover: ask again
            if current and current != old_primary:
                self._witness_promotion(str(current), old_primary, time.monotonic_ns())
                return
            if self.promotions.closed.wait(self.settings.poll_interval):
                return  # the backend is closing

    def _witness_promotion(self, promoted: str, old_primary: str, promoted_mono_ns: int) -> None:
        facts = replay_point_facts(
            self.kube, self._db_ns, promoted, old_primary=old_primary,
            timeout_s=self.settings.wait_timeout,
        )  # fmt: skip
        self.promotions.record(promoted, promoted_mono_ns, facts)

    def switchover(self, to_member: str | None = None) -> str:
        topo = self.database_topology()
        target = to_member or next(
            (m.name for m in topo.members if m.role in ("sync-standby", "async-replica")), None
        )
        if target is None:
            raise PlatformError("no ready replica to switch over to")
        name, ns = str(self.settings.database_cluster), self._db_ns
        body = {"status": {"targetPrimary": target, "phase": "Switchover in progress",
                           "phaseReason": f"Switching over to {target}"}}  # fmt: skip
        call(
            f"promote {target}",
            lambda: self.kube.custom.patch_namespaced_custom_object_status(
                CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, name, body, _content_type=MERGE
            ),
        )
        old_primary = topo.primary.name if topo.primary is not None else "?"
        wait_for(
            f"{target} to become primary",
            lambda: (self._cluster().get("status") or {}).get("currentPrimary") == target,
            self.settings.wait_timeout, self.settings.poll_interval,
        )  # fmt: skip
        self._witness_promotion(target, old_primary, time.monotonic_ns())
        return target

    def rejoin(self, member: str) -> None:
        def back() -> bool:
            role = {m.name: m.role for m in self.database_topology().members}.get(member)
            return role in ("sync-standby", "async-replica", "primary")

        wait_for(f"{member} to rejoin as a replica", back, self.settings.wait_timeout,
                 self.settings.poll_interval)  # fmt: skip


def _ready(pod: client.V1Pod) -> bool:
    if pod.metadata is not None and pod.metadata.deletion_timestamp is not None:
        return False
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _now() -> str:
    return datetime.now(UTC).isoformat()
