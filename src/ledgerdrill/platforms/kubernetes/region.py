"""RegionControl across two kubeconfig contexts: the platform's own cluster and the DR
cluster named by ``dr_context`` (``kind-config-dr.yaml``). Both run the same namespace
and names (``deploy/kind``; the DR's database is a CloudNativePG replica cluster,
``deploy/kind/dr/``). A region's name is its nodes' ``topology.kubernetes.io/region``
label (``primary``/``dr`` when unlabelled).

- outage: every Deployment in the namespace (the ERP, the cache) is scaled to zero and
  the database is hibernated (``cnpg.io/hibernation=on``, CloudNativePG's declarative
  hibernation: the instance pods go, the volumes stay). The nodes are left alone: a lost
  region is modelled by its workloads being gone, not by stopping a kind cluster.
- fail_over_to: the DR runbook. Promote the region's database (a replica cluster:
  ``spec.replica.enabled=false``, then wait for the new timeline the promotion starts),
  then scale its ERP to the replica count the failed region ran. *Traffic*: each kind
  cluster has its own ingress; switching users' DNS or a global load balancer to the
  DR entry is outside the clusters, so "moving traffic" here ends at a serving DR ERP.
- restore_region: fence the DR first (ERP back to its journaled replica count; a DR
  database the runbook promoted is re-cloned as a replica cluster, since CloudNativePG
  cannot turn replica mode back on after a promotion), then wake the region's database,
  then scale its Deployments back. Writes the DR accepted while promoted are not copied
  back: the primary resumes from its own data (a real fail-back would first make it a
  replica of the DR).

Every previous value (replica counts, the hibernation annotation, replica mode) is in
``region_snapshot``, which the fault journals before anything changes; the same values
are also written as annotations in the patch that changes them, so ``restore_region``
works in a process that has no journal record.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client
from ledgerdrill.errors import ConfigError, PlatformError
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.kubernetes.api import (
    CNPG_GROUP,
    CNPG_PLURAL,
    CNPG_VERSION,
    MERGE,
    Kube,
    call,
    status_of,
    wait_for,
)
from ledgerdrill.platforms.kubernetes.promotion import PromotionLog, replay_point_facts
from ledgerdrill.targets import KubernetesPlatformSettings

REGION_LABEL = "topology.kubernetes.io/region"
REPLICAS_BEFORE = "ledgerdrill.io/replicas-before-drill"
PROMOTED = "ledgerdrill.io/promoted-by-drill"
HIBERNATION = "cnpg.io/hibernation"
Snapshot = dict[str, Any]


class RegionOps:
    kube: Kube
    dr_kube: Kube | None
    settings: KubernetesPlatformSettings
    _region_names: dict[str, Kube] | None
    _region_snapshots: dict[str, Snapshot]
    promotions: PromotionLog

    # -- which cluster is which region ----------------------------------------------------
    def _sides(self) -> dict[str, Kube]:
        if self._region_names is None:
            if self.dr_kube is None:
                raise ConfigError("platform.dr_context: not set, so there is no DR region")
            names = {
                _region_of(self.kube, "primary"): self.kube,
                _region_of(self.dr_kube, "dr"): self.dr_kube,
            }
            if len(names) < 2:
                raise PlatformError(
                    f"contexts {self.kube.context} and {self.dr_kube.context} both label their "
                    f"nodes {REGION_LABEL}={next(iter(names))}; the DR cluster needs its own"
                )
            self._region_names = names
        return self._region_names

    def _side(self, region: str) -> Kube:
        sides = self._sides()
        if region not in sides:
            raise ConfigError(
                f"region {region!r}: not a region of this platform (regions: {', '.join(sides)})"
            )
        return sides[region]

    def regions(self) -> Sequence[str]:
        return list(self._sides())

    # -- reading ----------------------------------------------------------------------------
    def _deployment_list(self, kube: Kube) -> list[client.V1Deployment]:
        ns = self.settings.namespace
        return list(
            call(
                f"{kube.context}: list deployments in {ns}",
                lambda: kube.apps.list_namespaced_deployment(ns),
            ).items
        )

    def _deployments(self, kube: Kube) -> dict[str, int]:
        items = self._deployment_list(kube)
        return {
            str(d.metadata.name): int(d.spec.replicas or 0) for d in items if d.metadata and d.spec
        }

    def _database(self, kube: Kube) -> dict[str, Any] | None:
        name = self.settings.database_cluster
        if name is None:
            return None
        ns = self.settings.database_namespace or self.settings.namespace
        try:
            found = call(
                f"{kube.context}: read CNPG cluster {ns}/{name}",
                lambda: kube.custom.get_namespaced_custom_object(
                    CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, name
                ),
            )
        except PlatformError as exc:
            if status_of(exc) == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    def _erp_ready(self, kube: Kube) -> int:
        name, ns = self.settings.erp_deployment, self.settings.namespace
        try:
            dep = call(
                f"{kube.context}: read deployment {ns}/{name}",
                lambda: kube.apps.read_namespaced_deployment(name, ns),
            )
        except PlatformError as exc:
            if status_of(exc) == 404:
                return 0
            raise
        return int((dep.status.ready_replicas if dep.status else None) or 0)

    def region_state(self, region: str) -> NodeState:
        """STOPPED when nothing in the region serves: no Ready ERP pod and no Ready
        database instance (a cold DR with a following replica cluster is RUNNING)."""
        kube = self._side(region)
        database = self._database(kube)
        db_ready = int(((database or {}).get("status") or {}).get("readyInstances") or 0)
        return NodeState.RUNNING if self._erp_ready(kube) or db_ready else NodeState.STOPPED

    def region_snapshot(self, region: str) -> Snapshot:
        """Everything the undo needs, read before the journal write (changes nothing)."""
        self._side(region)
        sides: dict[str, Any] = {}
        for name, kube in self._sides().items():
            database = self._database(kube)
            meta, spec = (database or {}).get("metadata") or {}, (database or {}).get("spec") or {}
            sides[name] = {
                "context": kube.context,
                "deployments": self._deployments(kube),
                "hibernation": (meta.get("annotations") or {}).get(HIBERNATION),
                "replica": (spec.get("replica") or {}).get("enabled") if database else None,
            }
        snapshot: Snapshot = {"region": region, "regions": sides}
        self._region_snapshots[region] = snapshot
        return snapshot

    def region_outage_actions(self, region: str) -> list[str]:
        kube, ns = self._side(region), self.settings.namespace
        actions = [
            f"scale deployment {ns}/{name} {replicas}→0"
            for name, replicas in self._deployments(kube).items()
            if replicas
        ]
        if self._database(kube) is not None:
            db_ns = self.settings.database_namespace or ns
            actions.append(f"hibernate CNPG cluster {db_ns}/{self.settings.database_cluster}")
        return [f"{kube.context}: {a}" for a in actions]

    # -- changing ---------------------------------------------------------------------------
    def _patch_deployment(self, kube: Kube, name: str, body: dict[str, Any]) -> None:
        ns = self.settings.namespace
        call(
            f"{kube.context}: patch deployment {ns}/{name}",
            lambda: kube.apps.patch_namespaced_deployment(name, ns, body, _content_type=MERGE),
        )

    def _patch_database(self, kube: Kube, body: dict[str, Any]) -> None:
        name = str(self.settings.database_cluster)
        ns = self.settings.database_namespace or self.settings.namespace
        call(
            f"{kube.context}: patch CNPG cluster {ns}/{name}",
            lambda: kube.custom.patch_namespaced_custom_object(
                CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, name, body, _content_type=MERGE
            ),
        )

    def _scale(self, kube: Kube, name: str, replicas: int, before: int | None) -> None:
        """Scale, writing the count to go back to in the same patch (``None``: drop it)."""
        notes = {REPLICAS_BEFORE: str(before) if before is not None else None}
        self._patch_deployment(
            kube, name, {"metadata": {"annotations": notes}, "spec": {"replicas": replicas}}
        )

    def _wait(self, what: str, check: Any) -> None:
        wait_for(what, check, self.settings.wait_timeout, self.settings.poll_interval)

    def region_outage(self, region: str) -> None:
        kube = self._side(region)
        if region not in self._region_snapshots:
            self.region_snapshot(region)  # a caller without a journal still gets an undo
        for name, replicas in self._deployments(kube).items():
            if replicas:
                self._scale(kube, name, 0, replicas)
        if self._database(kube) is not None:
            self._patch_database(kube, {"metadata": {"annotations": {HIBERNATION: "on"}}})
        self._wait(
            f"region {region} to stop serving",
            lambda: self.region_state(region) is NodeState.STOPPED,
        )

    def fail_over_to(self, region: str) -> None:
        kube = self._side(region)
        database = self._database(kube)
        if database is not None and ((database.get("spec") or {}).get("replica") or {}).get(
            "enabled"
        ):
            timeline = int((database.get("status") or {}).get("timelineID") or 0)
            self._patch_database(
                kube,
                {
                    "metadata": {"annotations": {PROMOTED: "true"}},
                    "spec": {"replica": {"enabled": False}},
                },
            )

            def promoted() -> bool:
                status = (self._database(kube) or {}).get("status") or {}
                return (
                    int(status.get("timelineID") or 0) > timeline
                    and int(status.get("readyInstances") or 0) >= 1
                )

            self._wait(f"the {region} database to be promoted (a new timeline)", promoted)
            self._witness_region_promotion(kube, region)
        wanted = (
            max(
                (
                    int(side["deployments"].get(self.settings.erp_deployment, 0))
                    for snap in self._region_snapshots.values()
                    for name, side in snap["regions"].items()
                    if name != region
                ),
                default=1,
            )
            or 1
        )
        current = self._deployments(kube).get(self.settings.erp_deployment, 0)
        if current < wanted:
            self._scale(kube, self.settings.erp_deployment, wanted, current)
        self._wait(
            f"{wanted} ready ERP replicas in region {region}",
            lambda: self._erp_ready(kube) >= wanted,
        )

    def _witness_region_promotion(self, kube: Kube, region: str) -> None:
        """The promoted DR database's replay point (``promotion.py``), from its primary
        instance; the old primary is the primary region's, hibernated by the outage."""
        promoted_ns = time.monotonic_ns()
        status = (self._database(kube) or {}).get("status") or {}
        promoted = str(status.get("currentPrimary") or "")
        if not promoted:
            return  # no instance named: nothing to ask (the region's checks say why)
        old = "?"
        for name, other in self._sides().items():
            if name != region:
                status = (self._database(other) or {}).get("status") or {}
                old = f"{status.get('currentPrimary') or '?'} (region {name})"
        ns = self.settings.database_namespace or self.settings.namespace
        facts = replay_point_facts(kube, ns, promoted, old_primary=old,
                                   timeout_s=self.settings.wait_timeout)  # fmt: skip
        self.promotions.record(promoted, promoted_ns, facts)

    def restore_region(self, region: str) -> None:
        snapshot = self._region_snapshots.get(region) or self._snapshot_from_annotations(region)
        self.restore_region_from(region, snapshot)

    def _snapshot_from_annotations(self, region: str) -> Snapshot:
        """What a process without the journal record can still know (see module doc)."""
        sides: dict[str, Any] = {}
        for name, kube in self._sides().items():
            before: dict[str, int] = {}
            for dep in self._deployment_list(kube):
                notes = (dep.metadata.annotations if dep.metadata else None) or {}
                if REPLICAS_BEFORE in notes:
                    before[str(dep.metadata.name)] = int(notes[REPLICAS_BEFORE])  # type: ignore[union-attr]
            database = self._database(kube)
            marks = ((database or {}).get("metadata") or {}).get("annotations") or {}
            sides[name] = {
                "context": kube.context,
                "deployments": before,
                "hibernation": None,
                "replica": True if PROMOTED in marks else None,
            }
        return {"region": region, "regions": sides}

    def restore_region_from(self, region: str, snapshot: Mapping[str, Any]) -> None:
        """Back to the journaled state; idempotent (only what differs is patched)."""
        sides: Mapping[str, Any] = snapshot.get("regions") or {}
        for name, side in sides.items():  # fence the other regions first: one writer
            if name != region and name in self._sides():
                self._restore_side(self._sides()[name], side)
        kube = self._side(region)
        mine = sides.get(region) or {"deployments": {}, "hibernation": None, "replica": None}
        database = self._database(kube)
        if database is not None:
            notes = (database.get("metadata") or {}).get("annotations") or {}
            if notes.get(HIBERNATION) != mine.get("hibernation"):
                self._patch_database(
                    kube, {"metadata": {"annotations": {HIBERNATION: mine.get("hibernation")}}}
                )
            if mine.get("hibernation") != "on":
                self._wait(
                    f"the {region} database to be ready", lambda: _db_ready(self._database(kube))
                )
        self._restore_side(kube, mine)
        wanted = dict(mine.get("deployments") or {})
        self._wait(
            f"the deployments of region {region} to be ready again",
            lambda: all(self._ready_replicas(kube, n) >= int(r) for n, r in wanted.items()),
        )

    def _restore_side(self, kube: Kube, side: Mapping[str, Any]) -> None:
        current = self._deployments(kube)
        for name, replicas in dict(side.get("deployments") or {}).items():
            if name in current and current[name] != int(replicas):
                self._scale(kube, name, int(replicas), None)
            elif name in current:
                self._patch_deployment(
                    kube, name, {"metadata": {"annotations": {REPLICAS_BEFORE: None}}}
                )
        database = self._database(kube)
        if database is None or side.get("replica") is not True:
            return
        enabled = ((database.get("spec") or {}).get("replica") or {}).get("enabled")
        if not enabled:
            self._reclone(kube, database)

    def _reclone(self, kube: Kube, database: Mapping[str, Any]) -> None:
        """Make a DR database the runbook promoted a replica cluster again. Not by
        switching replica mode back on: CloudNativePG documents disabling replication as
        irreversible (CloudNativePG replica_cluster.md: the clusters "become two independent
        clusters definitively"), so the promoted cluster is deleted -- its volumes go with
        it, and with them the writes it took while promoted, which a fail-back to the
        primary discards anyway -- and created again from its own spec with replica mode
        on: it bootstraps from the primary (pg_basebackup) and follows it. Only a cluster
        this harness promoted (its annotation) is ever deleted."""
        meta = database.get("metadata") or {}
        notes = dict(meta.get("annotations") or {})
        name, ns = str(meta.get("name")), str(meta.get("namespace"))
        if notes.get(PROMOTED) != "true":
            raise PlatformError(
                f"{kube.context}: CNPG cluster {ns}/{name} is out of replica mode but was not "
                "promoted by a drill: not re-cloned (that deletes it); make it a replica "
                "cluster again by hand"
            )
        spec = copy.deepcopy(dict(database.get("spec") or {}))
        spec["replica"] = {**(spec.get("replica") or {}), "enabled": True}
        notes.pop(PROMOTED, None)
        body = {
            "apiVersion": f"{CNPG_GROUP}/{CNPG_VERSION}", "kind": "Cluster",
            "metadata": {"name": name, "namespace": ns, "labels": meta.get("labels") or {},
                         "annotations": notes},
            "spec": spec,
        }  # fmt: skip
        call(
            f"{kube.context}: delete promoted CNPG cluster {ns}/{name} (to re-clone it)",
            lambda: kube.custom.delete_namespaced_custom_object(
                CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, name
            ),
        )
        self._wait(f"CNPG cluster {ns}/{name} to be gone", lambda: self._database(kube) is None)
        call(
            f"{kube.context}: create CNPG cluster {ns}/{name} as a replica cluster again",
            lambda: kube.custom.create_namespaced_custom_object(
                CNPG_GROUP, CNPG_VERSION, ns, CNPG_PLURAL, body
            ),
        )
        self._wait(
            f"the re-cloned CNPG cluster {ns}/{name} to be ready",
            lambda: _db_ready(self._database(kube)),
        )

    def _ready_replicas(self, kube: Kube, name: str) -> int:
        ns = self.settings.namespace
        dep = call(
            f"{kube.context}: read deployment {ns}/{name}",
            lambda: kube.apps.read_namespaced_deployment(name, ns),
        )
        return int((dep.status.ready_replicas if dep.status else None) or 0)


def _db_ready(database: Mapping[str, Any] | None) -> bool:
    if database is None:
        return True
    status = database.get("status") or {}
    instances = int((database.get("spec") or {}).get("instances") or 1)
    return int(status.get("readyInstances") or 0) >= instances


def _region_of(kube: Kube, default: str) -> str:
    nodes = call(f"{kube.context}: list nodes", kube.core.list_node).items
    labels = {(n.metadata.labels or {}).get(REGION_LABEL) for n in nodes if n.metadata}
    labels.discard(None)
    if len(labels) > 1:
        raise PlatformError(
            f"context {kube.context}: nodes in several regions "
            f"({', '.join(sorted(str(x) for x in labels))}); one region a cluster"
        )
    return str(labels.pop()) if labels else default
