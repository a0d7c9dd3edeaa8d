"""Minimal controllers, so the fake cluster reacts the way the real one does:

- scheduler: a pod goes to a Ready, schedulable node whose taints it tolerates,
  spreading each owner's pods over zones (like a topology spread constraint);
- Deployment -> ReplicaSet -> Pod, with revisions and ``pod-template-hash`` as the real
  deployment controller writes them; a deleted or evicted pod is replaced after
  ``reschedule_delay``; a new pod turns Ready after ``ready_delay``;
- the NoExecute taint manager evicts pods that do not tolerate a node's taint;
- PodDisruptionBudget status, and the eviction check the API server makes (429);
- a CloudNativePG operator (``cnpg.py``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any

from ledgerdrill.testing.fakeapi.cnpg import CnpgOperator
from ledgerdrill.testing.fakeapi.store import ApiError, Obj, Store, now_iso, pod_ready

PODS, NODES = "core/pods", "core/nodes"
DEPLOYMENTS, REPLICASETS = "apps/deployments", "apps/replicasets"
PDBS, CLUSTERS = "policy/poddisruptionbudgets", "postgresql.cnpg.io/clusters"
REVISION = "deployment.kubernetes.io/revision"


def node_ready(node: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions") or []
    )


def tolerates(pod: Obj, taint: Obj) -> bool:
    for tol in pod.get("spec", {}).get("tolerations") or []:
        if tol.get("effect") not in (None, "", taint.get("effect")):
            continue
        if tol.get("operator") == "Exists" and tol.get("key") in (None, "", taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value") == taint.get("value"):
            return True
    return False


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def template_hash(template: Obj) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


class Controllers:
    def __init__(self, store: Store, *, ready_delay: float, reschedule_delay: float) -> None:
        self.store = store
        self.ready_delay = ready_delay
        self.reschedule_delay = reschedule_delay
        self.born: dict[str, float] = {}  # pod uid -> created (monotonic)
        self.short_since: dict[str, float] = {}  # owner uid -> first seen short of pods
        self.full_once: set[str] = set()  # ReplicaSets that had all their pods once
        self.cnpg = CnpgOperator(self)

    # -- eviction (called by the API handler) ---------------------------------------------
    def check_eviction(self, ns: str, pod: Obj) -> None:
        labels = pod["metadata"].get("labels") or {}
        covering = [
            pdb for pdb in self.store.list(PDBS, ns)
            if selector_matches(pdb.get("spec", {}).get("selector") or {}, labels)
        ]  # fmt: skip
        if len(covering) > 1:
            # upstream pkg/registry/core/pod/storage/eviction.go: a pod under more than one
            # budget is refused outright, whatever the budgets allow -- a Status of code 500
            # and this message, no reason, no retry hint
            raise ApiError(
                500, "",
                "This pod has more than one PodDisruptionBudget, which the eviction "
                "subresource does not support.",
            )  # fmt: skip
        for pdb in covering:
            spec = pdb.get("spec", {})
            matching = [
                p
                for p in self.store.list(PODS, ns)
                if selector_matches(spec.get("selector") or {}, p["metadata"].get("labels") or {})
            ]
            healthy = sum(pod_ready(p) for p in matching)
            if "minAvailable" in spec:
                needed = int(spec["minAvailable"])
            else:
                needed = len(matching) - int(spec.get("maxUnavailable", 0))
            if pod_ready(pod) and healthy - 1 < needed:
                name = pdb["metadata"]["name"]
                # the exact shape of fixtures/kubernetes/status-429-eviction-blocked-by-pdb.json
                raise ApiError(
                    429, "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [{"reason": "DisruptionBudget", "message":
                        f"The disruption budget {name} needs {needed} healthy pods and has "
                        f"{healthy} currently"}]},
                )  # fmt: skip

    # -- the loop ---------------------------------------------------------------------------
    def tick(self) -> None:
        with self.store.lock:
            self._taint_manager()
            self._deployments()
            self._replicasets()
            self.cnpg.tick()
            self._kubelets()
            self._pdb_status()

    def _schedulable_nodes(self, pod: Obj) -> list[Obj]:
        out = []
        for node in self.store.list(NODES, None):
            spec = node.get("spec", {})
            if spec.get("unschedulable") or not node_ready(node):
                continue
            taints = [t for t in spec.get("taints") or [] if t.get("effect") != "PreferNoSchedule"]
            if all(tolerates(pod, t) for t in taints):
                out.append(node)
        return out

    def schedule(self, pod: Obj, siblings: list[Obj]) -> str | None:
        """The least-loaded zone, then node, among this owner's pods."""
        nodes = self._schedulable_nodes(pod)
        if not nodes:
            return None
        zone_of = {
            n["metadata"]["name"]: n["metadata"]
            .get("labels", {})
            .get("topology.kubernetes.io/zone", "")
            for n in self.store.list(NODES, None)
        }
        per_zone: dict[str, int] = {}
        per_node: dict[str, int] = {}
        for s in siblings:
            node = s.get("spec", {}).get("nodeName", "")
            per_node[node] = per_node.get(node, 0) + 1
            per_zone[zone_of.get(node, "")] = per_zone.get(zone_of.get(node, ""), 0) + 1
        best = min(
            nodes,
            key=lambda n: (
                per_zone.get(zone_of[n["metadata"]["name"]], 0),
                per_node.get(n["metadata"]["name"], 0),
                n["metadata"]["name"],
            ),
        )
        return str(best["metadata"]["name"])

    def new_pod(self, ns: str, name: str, template: Obj, owner: Obj, node: str) -> Obj:
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": dict(template.get("metadata", {}).get("labels") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {**copy.deepcopy(template.get("spec", {})), "nodeName": node},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "True",
                        "lastProbeTime": None,
                        "lastTransitionTime": now_iso(),
                    },
                    {
                        "type": "Ready",
                        "status": "False",
                        "lastProbeTime": None,
                        "lastTransitionTime": now_iso(),
                    },
                ],
            },
        }
        created = self.store.create(PODS, ns, pod)
        self.born[created["metadata"]["uid"]] = time.monotonic()
        return created

    def _kubelets(self) -> None:
        """Pods become Running and Ready ``ready_delay`` after creation, shaped like the
        status in fixtures/kubernetes/podlist-kubernetes-client-java.json."""
        for pod in self.store.list(PODS, None):
            uid = pod["metadata"]["uid"]
            if pod_ready(pod) or time.monotonic() - self.born.get(uid, 0.0) < self.ready_delay:
                continue

            def ready(p: Obj) -> Obj:
                t = now_iso()
                p["status"] = {
                    "phase": "Running",
                    "conditions": [
                        {"type": kind, "status": "True", "lastProbeTime": None,
                         "lastTransitionTime": t}
                        for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
                    ],
                    "containerStatuses": [
                        {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                         "ready": True, "restartCount": 0, "started": True,
                         "state": {"running": {"startedAt": t}}, "lastState": {}}
                        for c in p["spec"].get("containers", [])
                    ],
                    "startTime": t,
                }  # fmt: skip
                return p

            self.store.update(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], ready)

    def _taint_manager(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.store.list(NODES, None)}
        for pod in self.store.list(PODS, None):
            node = nodes.get(pod["spec"].get("nodeName", ""))
            if node is None:
                continue
            taints = [t for t in node["spec"].get("taints") or [] if t["effect"] == "NoExecute"]
            if any(not tolerates(pod, t) for t in taints):
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _deployments(self) -> None:
        for dep in self.store.list(DEPLOYMENTS, None):
            ns, name, uid = (dep["metadata"][k] for k in ("namespace", "name", "uid"))
            template = dep["spec"]["template"]
            digest = template_hash(template)
            owned = [
                rs
                for rs in self.store.list(REPLICASETS, ns)
                if any(o["uid"] == uid for o in rs["metadata"].get("ownerReferences") or [])
            ]
            top = max((int(rs["metadata"]["annotations"][REVISION]) for rs in owned), default=0)
            current = next(
                (rs for rs in owned if rs["metadata"]["labels"]["pod-template-hash"] == digest),
                None,
            )
            if current is None:
                labels = {**template["metadata"].get("labels", {}), "pod-template-hash": digest}
                tmpl = copy.deepcopy(template)
                tmpl["metadata"]["labels"] = labels
                current = self.store.create(REPLICASETS, ns, {
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{name}-{digest}", "labels": labels,
                        "annotations": {REVISION: str(top + 1)},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                            "name": name, "uid": uid, "controller": True,
                            "blockOwnerDeletion": True}],
                    },
                    "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                             "template": tmpl},
                })  # fmt: skip
                owned.append(current)
            elif int(current["metadata"]["annotations"][REVISION]) < top:
                # a rollback re-uses the old ReplicaSet and gives it the next revision
                def bump(rs: Obj, rev: int = top + 1) -> Obj:
                    rs["metadata"]["annotations"][REVISION] = str(rev)
                    return rs

                current = self.store.update(REPLICASETS, ns, current["metadata"]["name"], bump)
            for rs in owned:
                want = dep["spec"].get("replicas", 1) if rs is current else 0
                if rs["spec"]["replicas"] != want:

                    def scale(r: Obj, n: int = want) -> Obj:
                        r["spec"]["replicas"] = n
                        return r

                    self.store.update(REPLICASETS, ns, rs["metadata"]["name"], scale)
            self._deployment_status(dep, current, owned)

    def _deployment_status(self, dep: Obj, current: Obj, owned: list[Obj]) -> None:
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        uids = {rs["metadata"]["uid"] for rs in owned}
        pods = [p for p in self.store.list(PODS, ns) if _owner_uid(p) in uids]
        new = [p for p in pods if _owner_uid(p) == current["metadata"]["uid"]]
        ready = sum(pod_ready(p) for p in pods)
        want = dep["spec"].get("replicas", 1)
        status = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": len(pods),
            "updatedReplicas": len(new),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, want - ready),
            "conditions": [
                {"type": "Available", "status": "True" if ready >= want else "False",
                 "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if len(new) == want == ready
                 else "ReplicaSetUpdated",
                 "message": f'ReplicaSet "{current["metadata"]["name"]}" is progressing.'},
            ],
        }  # fmt: skip
        if dep.get("status") != status:

            def put(d: Obj) -> Obj:
                d["status"] = status
                return d

            self.store.update(DEPLOYMENTS, ns, name, put)

    def _replicasets(self) -> None:
        for rs in self.store.list(REPLICASETS, None):
            ns, uid = rs["metadata"]["namespace"], rs["metadata"]["uid"]
            pods = [p for p in self.store.list(PODS, ns) if _owner_uid(p) == uid]
            want = rs["spec"]["replicas"]
            for extra in pods[want:]:
                self.store.delete(PODS, ns, extra["metadata"]["name"])
            if want == 0:
                self.full_once.discard(uid)
            if len(pods) >= want:
                self.short_since.pop(uid, None)
                self.full_once.add(uid)
                continue
            first = self.short_since.setdefault(uid, time.monotonic())
            # a scale-up or rollout starts at once; replacing lost pods takes a while
            waiting = time.monotonic() - first < self.reschedule_delay
            if uid in self.full_once and waiting:
                continue
            for _ in range(want - len(pods)):
                template = rs["spec"]["template"]
                node = self.schedule(template, pods)
                if node is None:
                    break
                suffix = hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:5]
                name = f"{rs['metadata']['name']}-{suffix}"
                pods.append(self.new_pod(ns, name, template, rs, node))

    def _pdb_status(self) -> None:
        for pdb in self.store.list(PDBS, None):
            ns, spec = pdb["metadata"]["namespace"], pdb["spec"]
            matching = [
                p
                for p in self.store.list(PODS, ns)
                if selector_matches(spec.get("selector") or {}, p["metadata"].get("labels") or {})
            ]
            healthy = sum(pod_ready(p) for p in matching)
            desired = int(spec.get("minAvailable", len(matching) - spec.get("maxUnavailable", 0)))
            status = {
                "observedGeneration": pdb["metadata"]["generation"],
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "expectedPods": len(matching),
                "disruptionsAllowed": max(0, healthy - desired),
            }
            if pdb.get("status") != status:

                def put(p: Obj, new: Obj = status) -> Obj:
                    p["status"] = new
                    return p

                self.store.update(PDBS, ns, pdb["metadata"]["name"], put)


def _owner_uid(pod: Obj) -> str:
    refs: list[Any] = pod["metadata"].get("ownerReferences") or []
    return str(refs[0]["uid"]) if refs else ""
