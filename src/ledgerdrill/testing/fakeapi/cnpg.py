"""The fake cluster's CloudNativePG operator (``postgresql.cnpg.io/v1`` ``Cluster``).

What it does, as the real operator does it (https://cloudnative-pg.io/documentation/):

- instance pods ``<cluster>-<n>`` labelled ``cnpg.io/cluster``/``cnpg.io/instanceRole``;
  failover to a ready replica when the primary's pod is gone; a switchover when
  ``status.targetPrimary`` changes (what ``kubectl cnpg promote`` writes);
- declarative hibernation: the annotation ``cnpg.io/hibernation=on`` deletes every
  instance pod (the PVCs, not modelled here, keep the data) and sets the condition
  ``cnpg.io/hibernation``; ``off`` (or no annotation) starts them again in the same roles;
- replica clusters (``spec.replica.enabled``): the designated primary follows a source;
  turning replica mode off promotes it, which starts a new timeline (``status.timelineID``);
- bootstrap from a backup (``spec.bootstrap.recovery``): admission refuses a recovery
  whose ``source`` is not in ``spec.externalClusters`` or whose ``recoveryTarget.targetTime``
  is not a timestamp (the operator's validating webhook does the same);
- WAL archiving: admission refuses a WAL-archiver plugin beside the in-tree
  ``spec.backup.barmanObjectStore``, and more than one WAL-archiver plugin (the webhook's
  ``validatePluginConfiguration``, ``internal/webhook/v1/cluster_webhook.go``); a
  recovery through the Barman Cloud plugin from an ``ObjectStore`` that does not exist
  never gets an instance (the real recovery job fails: there is no bucket to read).

Not faithful: no PostgreSQL runs, so there is no data, no WAL and no lag; a recovery
"replays" instantly; a demoted cluster is not re-cloned from its source.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime
from typing import TYPE_CHECKING

from ledgerdrill.platforms.kubernetes.archive import BARMAN_PLUGIN, wal_archiver_plugins
from ledgerdrill.testing.fakeapi.store import ApiError, Obj, now_iso, pod_ready

if TYPE_CHECKING:
    from ledgerdrill.testing.fakeapi.controllers import Controllers

PODS, CLUSTERS = "core/pods", "postgresql.cnpg.io/clusters"
OBJECT_STORES = "barmancloud.cnpg.io/objectstores"
HIBERNATION = "cnpg.io/hibernation"


def instances_status(names: list[str], pods: dict[str, Obj]) -> dict[str, list[str]]:
    """``status.instancesStatus``: instance names by pod status, as the operator reports
    them (``ClusterStatus.InstancesStatus map[utils.PodStatus][]string`` in CNPG's
    ``api/v1/cluster_types.go``; ``healthy``: the pod is active and ready,
    ``replicating``: active but not ready yet, ``failed``: it has no pod)."""
    found: dict[str, list[str]] = {}
    for inst in names:
        pod = pods.get(inst)
        key = "failed" if pod is None else "healthy" if pod_ready(pod) else "replicating"
        found.setdefault(key, []).append(inst)
    return found


def admit(cluster: Obj) -> None:
    """The validating webhook's checks for what the backend creates: a 422 ``Invalid``."""
    spec = cluster.get("spec") or {}
    archivers = [str(p.get("name")) for p in wal_archiver_plugins(spec)]
    name = f'Cluster.postgresql.cnpg.io "{(cluster.get("metadata") or {}).get("name")}" is invalid'
    if archivers and (spec.get("backup") or {}).get("barmanObjectStore") is not None:
        raise ApiError(
            422, "Invalid",
            f"{name}: spec.plugins: Invalid value: {archivers}: Cannot enable a WAL archiver "
            "plugin when barmanObjectStore is configured",
        )  # fmt: skip
    if len(archivers) > 1:
        raise ApiError(
            422, "Invalid",
            f"{name}: spec.plugins: Invalid value: {archivers}: Cannot enable more than one "
            "WAL archiver plugin",
        )  # fmt: skip
    recovery = (spec.get("bootstrap") or {}).get("recovery")
    if recovery is None:
        return
    external = {e.get("name") for e in cluster["spec"].get("externalClusters") or []}
    source = recovery.get("source")
    if source not in external:
        raise ApiError(
            422, "Invalid",
            f'Cluster.postgresql.cnpg.io "{cluster["metadata"].get("name")}" is invalid: '
            f"spec.bootstrap.recovery.source: Invalid value: {source!r}: "
            "missing external cluster",
        )  # fmt: skip
    target_time = (recovery.get("recoveryTarget") or {}).get("targetTime")
    if target_time is not None:
        try:
            datetime.fromisoformat(str(target_time).replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                422, "Invalid",
                "spec.bootstrap.recovery.recoveryTarget.targetTime: Invalid value: "
                f"{target_time!r}: not a valid timestamp",
            ) from None  # fmt: skip


class CnpgOperator:
    def __init__(self, controllers: Controllers) -> None:
        self.controllers = controllers
        self.store = controllers.store
        self.replica_mode: dict[str, bool] = {}  # cluster uid -> spec.replica.enabled seen
        # clusters promoted out of replica mode: CloudNativePG's docs (replica_cluster.md)
        # call disabling replication "an irreversible operation ... the replica cluster
        # and the source cluster become two independent clusters definitively"
        self.detached: set[str] = set()

    def tick(self) -> None:
        clusters = self.store.list(CLUSTERS, None)
        self._collect_orphans({c["metadata"]["uid"] for c in clusters})
        for cluster in clusters:
            self._cluster(cluster)

    def _collect_orphans(self, live: set[str]) -> None:
        """Kubernetes' garbage collector: a deleted Cluster's pods go with it (their
        ownerReferences name it); its volumes too, so a re-created cluster starts empty."""
        for pod in self.store.list(PODS, None):
            owners = pod["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "Cluster" and o.get("uid") not in live for o in owners):
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _pods(self, ns: str, name: str) -> dict[str, Obj]:
        return {
            p["metadata"]["name"]: p for p in self.store.list(PODS, ns, f"cnpg.io/cluster={name}")
        }

    def _put_status(self, cluster: Obj, status: Obj) -> None:
        if cluster.get("status") != status:

            def put(c: Obj) -> Obj:
                c["status"] = status
                return c

            meta = cluster["metadata"]
            self.store.update(CLUSTERS, meta["namespace"], meta["name"], put)

    def _cluster(self, cluster: Obj) -> None:
        meta = cluster["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        names = [f"{name}-{i}" for i in range(1, int(cluster["spec"]["instances"]) + 1)]
        pods = self._pods(ns, name)
        status: Obj = copy.deepcopy(cluster.get("status") or {})
        if not status.get("currentPrimary"):
            status.update(currentPrimary=names[0], targetPrimary=names[0], timelineID=1)
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != HIBERNATION]
        if (meta.get("annotations") or {}).get(HIBERNATION) == "on":
            for instance in pods:
                self.store.delete(PODS, ns, instance)
            conditions.append({"type": HIBERNATION, "status": "True", "reason": "Hibernated",
                               "message": "Cluster has been hibernated"})  # fmt: skip
            status.update(conditions=conditions, instances=0, readyInstances=0,
                          instanceNames=status.get("instanceNames") or names,
                          phase="Cluster in hibernation")  # fmt: skip
            self._put_status(cluster, status)
            return
        status["conditions"] = conditions
        replica = bool((cluster["spec"].get("replica") or {}).get("enabled"))
        was_replica = self.replica_mode.setdefault(uid, replica)
        if was_replica and not replica:  # promotion of the designated primary
            status["timelineID"] = int(status.get("timelineID", 1)) + 1
            status["currentPrimaryTimestamp"] = now_iso()
            self.detached.add(uid)
        self.replica_mode[uid] = replica
        if replica and uid in self.detached:
            # replica mode switched back on after a promotion: the instances restart in
            # recovery from a source whose history they left (a new timeline of their
            # own) and never become ready; only a re-clone (a new cluster) follows again
            status.update(readyInstances=0, instanceNames=names,
                          phase="Cannot follow the source: promoted out of replica mode "
                          "(irreversible); re-clone the cluster")  # fmt: skip
            self._put_status(cluster, status)
            return
        missing = self._missing_recovery_store(cluster)
        if missing is not None and not status.get("instanceNames"):
            status.update(readyInstances=0, instances=0, phase=(
                f"Setting up primary: the recovery job cannot read ObjectStore {missing}: "
                "not found"))  # fmt: skip
            self._put_status(cluster, status)
            return
        primary, target = status["currentPrimary"], status["targetPrimary"]
        failed_over = False
        ready_replicas = [n for n in names if n != primary and n in pods and pod_ready(pods[n])]
        if primary not in pods and primary in status.get("instanceNames", []):
            # the primary's pod is gone: fail over to the first ready replica (the real
            # operator picks the most advanced one by received LSN)
            if ready_replicas:
                primary = target = ready_replicas[0]
                status["timelineID"] = int(status.get("timelineID", 1)) + 1
                status["currentPrimaryTimestamp"] = now_iso()
                failed_over = True
        elif target != primary and target in ready_replicas:
            primary = target  # switchover: the plugin set targetPrimary
            status["timelineID"] = int(status.get("timelineID", 1)) + 1
            status["currentPrimaryTimestamp"] = now_iso()
        status.update(currentPrimary=primary, targetPrimary=target if target in names else primary)
        siblings = list(pods.values())
        for inst in names:
            role = "primary" if inst == primary else "replica"
            pod = pods.get(inst)
            if pod is None:
                recreated = self._recreate(cluster, inst, role, siblings)
                siblings += [recreated] if recreated else []
            elif pod["metadata"]["labels"].get("cnpg.io/instanceRole") != role:

                def relabel(p: Obj, r: str = role) -> Obj:
                    p["metadata"]["labels"].update({"cnpg.io/instanceRole": r, "role": r})
                    return p

                self.store.update(PODS, ns, inst, relabel)
        pods = self._pods(ns, name)
        ready = sum(pod_ready(p) for p in pods.values())
        if ready == len(names) and status["targetPrimary"] == primary:
            phase = "Cluster in healthy state"
        elif failed_over:
            phase = "Failing over"
        elif status["targetPrimary"] != primary:
            phase = "Switchover in progress"
        else:
            phase = "Waiting for the instances to become active"
        status.update(instances=len(pods), readyInstances=ready, instanceNames=names, phase=phase,
                      instancesStatus=instances_status(names, pods))  # fmt: skip
        self._put_status(cluster, status)

    def _missing_recovery_store(self, cluster: Obj) -> str | None:
        """The ObjectStore a plugin recovery reads from, when it does not exist."""
        spec = cluster["spec"]
        source = ((spec.get("bootstrap") or {}).get("recovery") or {}).get("source")
        for external in spec.get("externalClusters") or []:
            plugin = external.get("plugin") or {}
            if external.get("name") != source or plugin.get("name") != BARMAN_PLUGIN:
                continue
            store = str((plugin.get("parameters") or {}).get("barmanObjectName") or "")
            if self.store.get(OBJECT_STORES, cluster["metadata"]["namespace"], store) is None:
                return store or "(none named)"
        return None

    def _recreate(self, cluster: Obj, inst: str, role: str, siblings: list[Obj]) -> Obj | None:
        """The operator re-creates a lost instance with the same name (its PVC survives)
        and it rejoins as a replica; first creation is immediate."""
        key = f"{cluster['metadata']['uid']}/{inst}"
        first = self.controllers.short_since.setdefault(key, time.monotonic())
        initialised = bool((cluster.get("status") or {}).get("instanceNames"))
        if initialised and time.monotonic() - first < self.controllers.reschedule_delay:
            return None
        name = cluster["metadata"]["name"]
        template: Obj = {
            "metadata": {"labels": {
                "cnpg.io/cluster": name, "cnpg.io/instanceName": inst,
                "cnpg.io/instanceRole": role, "role": role, "cnpg.io/podRole": "instance",
            }},
            "spec": {"containers": [{"name": "postgres",
                                     "image": cluster["spec"].get("imageName", "postgres")}]},
        }  # fmt: skip
        node = self.controllers.schedule(template, siblings)
        if node is None:
            return None
        self.controllers.short_since.pop(key, None)
        return self.controllers.new_pod(
            cluster["metadata"]["namespace"], inst, template, cluster, node
        )
