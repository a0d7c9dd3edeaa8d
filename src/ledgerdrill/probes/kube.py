"""The ``kube`` probe: what the cluster itself says, kept current by watches.

Three collections are listed once and then watched (``?watch=1`` from the list's
resourceVersion), each in its own thread that keeps the latest objects: the nodes,
the namespace's Deployments and, with ``pod_selector``, the pods. ``sample()`` only
reads that state under a lock, so it never blocks on the API server (at most
``timeout_s`` for the very first list) and never raises.

A sample is ok when every worker node (control-plane nodes left out; ``node_selector``
narrows further) has ``Ready=True``, and every listed Deployment has all its replicas
ready and wants at least one (a Deployment scaled to zero serves nobody). A watch that
cannot reach the API server fails the sample: the control plane being gone is an
outage too.

Pod restarts are a *warning*, not a failed sample: a container the kubelet restarted
whose Deployment stays fully ready has not interrupted anybody, and when it has, the
readiness check above fails already. The increase since the previous sample is in the
sample's ``warning`` and its ``restarts`` metric. ``restarts: fail`` makes the one
sample that sees an increase fail instead, for teams that treat any restart as an
incident.

Threads stop on ``close()``, or by themselves when nobody sampled for ``idle_stop_s``
(a scenario's probes are not closed by the drill); the next sample starts them again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kubernetes import client, watch
from ledgerdrill.timeline import Sample, Timeline

CONTROL_PLANE = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
RestartPolicy = Literal["warn", "fail"]


@dataclass
class _Collection:
    """One list+watch loop and the latest objects it saw, keyed by namespace/name."""

    what: str
    list_fn: Callable[..., Any]
    kwargs: dict[str, Any]
    objects: dict[str, Any] = field(default_factory=dict)
    synced: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    thread: threading.Thread | None = None


def _key(obj: Any) -> str:
    meta = obj.metadata
    return f"{meta.namespace or ''}/{meta.name}"


class KubeProbe:
    counts_for_rto = True

    def __init__(
        self,
        name: str,
        api: client.ApiClient,
        namespace: str,
        *,
        deployments: Sequence[str] = (),
        node_selector: str = "",
        pod_selector: str | None = None,
        restarts: RestartPolicy = "warn",
        watch_timeout_s: int = 10,
        idle_stop_s: float = 60.0,
    ) -> None:
        self.name = name
        self.api = api
        self.namespace = namespace
        self.deployments = list(deployments)
        self.restarts = restarts
        self.watch_timeout_s = watch_timeout_s
        self.idle_stop_s = idle_stop_s
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self._nodes = _Collection("nodes", core.list_node, {"label_selector": node_selector})
        self._deps = _Collection(
            "deployments", apps.list_namespaced_deployment, {"namespace": namespace}
        )
        self._pods = (
            _Collection(
                "pods",
                core.list_namespaced_pod,
                {"namespace": namespace, "label_selector": pod_selector},
            )
            if pod_selector is not None
            else None
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_sample = time.monotonic()
        self._restart_baseline: dict[str, int] = {}  # pod uid -> restarts seen so far

    # -- the watch threads ----------------------------------------------------------------
    def _collections(self) -> list[_Collection]:
        return [c for c in (self._nodes, self._deps, self._pods) if c is not None]

    def _ensure_started(self) -> None:
        self._stop.clear()
        for coll in self._collections():
            if coll.thread is None or not coll.thread.is_alive():
                coll.synced.clear()
                coll.thread = threading.Thread(
                    target=self._loop,
                    args=(coll,),
                    name=f"kube-{self.name}-{coll.what}",
                    daemon=True,
                )
                coll.thread.start()

    def _idle(self) -> bool:
        return time.monotonic() - self._last_sample > self.idle_stop_s

    def _loop(self, coll: _Collection) -> None:
        resource_version: str | None = None
        while not self._stop.is_set() and not self._idle():
            try:
                if resource_version is None:
                    listed = coll.list_fn(**coll.kwargs, _request_timeout=10)
                    with self._lock:
                        coll.objects = {_key(o): o for o in listed.items}
                        coll.error = None
                    resource_version = listed.metadata.resource_version
                    coll.synced.set()
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    coll.list_fn,
                    **coll.kwargs,
                    resource_version=resource_version,
                    timeout_seconds=self.watch_timeout_s,
                    _request_timeout=self.watch_timeout_s + 5,
                )
                for event in stream:
                    obj, kind = event["object"], event["type"]
                    if kind == "ERROR":  # e.g. 410 Gone: the resourceVersion is too old
                        resource_version = None
                        break
                    with self._lock:
                        if kind == "DELETED":
                            coll.objects.pop(_key(obj), None)
                        elif kind in ("ADDED", "MODIFIED"):
                            coll.objects[_key(obj)] = obj
                    resource_version = obj.metadata.resource_version or resource_version
                    if self._stop.is_set():
                        break
            except Exception as exc:  # the API server is unreachable or refused: retry
                with self._lock:
                    coll.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                resource_version = None
                self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()

    # -- sampling -----------------------------------------------------------------------
    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        self._last_sample = time.monotonic()
        self._ensure_started()
        deadline = time.monotonic() + timeout_s
        for coll in self._collections():
            coll.synced.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            ok, detail, metrics, warning = self._judge()
        took = timeline.clock.now().seconds_since(start)
        return Sample(self.name, start, ok, took, detail, metrics, warning)

    def _judge(self) -> tuple[bool, str, dict[str, float], str]:
        problems: list[str] = []
        for coll in self._collections():
            if not coll.synced.is_set():
                problems.append(f"no {coll.what} listed yet ({coll.error or 'waiting'})")
            elif coll.error:
                problems.append(f"watching {coll.what}: {coll.error}")
        if problems:
            return False, "; ".join(problems), {}, ""
        nodes = [
            n
            for n in self._nodes.objects.values()
            if not any(k in (n.metadata.labels or {}) for k in CONTROL_PLANE)
        ]
        not_ready = sorted(str(n.metadata.name) for n in nodes if not _node_ready(n))
        metrics: dict[str, float] = {"nodes_ready": len(nodes) - len(not_ready)}
        parts = [f"{len(nodes) - len(not_ready)}/{len(nodes)} nodes Ready"]
        if not nodes:
            problems.append("no worker nodes")
        if not_ready:
            problems.append(f"NotReady: {', '.join(not_ready)}")
        for name in self.deployments:
            dep = self._deps.objects.get(f"{self.namespace}/{name}")
            if dep is None:
                problems.append(f"deployment {name} not found")
                continue
            want = int(dep.spec.replicas or 0) if dep.spec else 0
            ready = int((dep.status.ready_replicas if dep.status else None) or 0)
            metrics[f"{name}_ready"] = ready
            parts.append(f"{name} {ready}/{want}")
            if want == 0:
                problems.append(f"{name} scaled to zero")
            elif ready < want:
                problems.append(f"{name} {ready}/{want} ready")
        warning = self._restart_warning(metrics)
        ok = not problems and not (warning and self.restarts == "fail")
        detail = "; ".join(problems) if problems else ", ".join(parts)
        return ok, detail, metrics, warning

    def _restart_warning(self, metrics: dict[str, float]) -> str:
        if self._pods is None:
            return ""
        increases: list[str] = []
        total = 0
        for pod in self._pods.objects.values():
            uid = str(pod.metadata.uid)
            count = sum(s.restart_count or 0 for s in (pod.status.container_statuses or []))
            total += count
            seen = self._restart_baseline.setdefault(uid, count)
            if count > seen:
                increases.append(f"{pod.metadata.name} +{count - seen} (now {count})")
                self._restart_baseline[uid] = count
        metrics["restarts"] = total
        return f"restarted: {', '.join(sorted(increases))}" if increases else ""


def _node_ready(node: Any) -> bool:
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
