"""NodeControl and ZoneControl on Kubernetes.

What each fault does (``node_faults: api``, the default, works on any cluster):

- crash: cordon, add the taint ``ledgerdrill.io/crashed:NoExecute`` (nothing is scheduled
  there, the taint manager evicts whatever lands) and delete every non-DaemonSet pod on
  the node with ``gracePeriodSeconds=0`` (they all die at once, as in a crash).
  Not faithful: the kubelet keeps running and the node stays Ready, so the real
  crash's detection delay (node-monitor-grace-period ~40 s, then the 300 s default
  not-ready toleration) is *not* part of the measured RTO. ``node_faults: docker`` on
  kind kills the node container instead (``docker kill``), which is a real crash.
- freeze: only with ``node_faults: docker``: ``docker pause`` (every process stops, the
  node goes NotReady, pods stay "Running" in the API). There is no API equivalent.
- drain: cordon, then the Eviction API for every pod (DaemonSet and mirror pods
  excepted); a 429 (PodDisruptionBudget) is retried until ``drain.timeout``, never forced.
- revert: remove the taint, restore ``spec.unschedulable`` to what it was before the
  fault (kept in the node's annotation ``ledgerdrill.io/was-unschedulable``, so a
  ``cleanup`` after a SIGKILL knows it), ``docker start``/``unpause`` in docker mode.

Control-plane nodes are reported ``protected`` and are never in a zone.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence

from kubernetes import client
from ledgerdrill.errors import PlatformError, UnsupportedCapability
from ledgerdrill.platforms.base import NodeInfo, NodeState
from ledgerdrill.platforms.kubernetes.api import Kube, call, retry_conflicts, status_of
from ledgerdrill.targets import KubernetesPlatformSettings

ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
CONTROL_PLANE = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
CRASH_TAINT = "ledgerdrill.io/crashed"
FAULT = "ledgerdrill.io/fault"
WAS_UNSCHEDULABLE = "ledgerdrill.io/was-unschedulable"
# the eviction API's refusal of a pod under two budgets (upstream
# pkg/registry/core/pod/storage/eviction.go): a 500 with this message and no reason
MULTIPLE_PDBS = "more than one PodDisruptionBudget"


def ready(node: client.V1Node) -> bool:
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


class NodeOps:
    kube: Kube
    settings: KubernetesPlatformSettings
    kind: str

    # -- reading ------------------------------------------------------------------------
    def _node(self, name: str) -> client.V1Node:
        return call(f"read node {name}", lambda: self.kube.core.read_node(name))

    def _info(self, node: client.V1Node) -> NodeInfo:
        meta = node.metadata or client.V1ObjectMeta()
        labels = meta.labels or {}
        protected = any(key in labels for key in CONTROL_PLANE)
        roles = tuple(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.")))
        return NodeInfo(
            name=str(meta.name), zone=labels.get(ZONE, ""), region=labels.get(REGION, ""),
            roles=roles or ("worker",), state=self._state(node), protected=protected,
        )  # fmt: skip

    def nodes(self) -> Sequence[NodeInfo]:
        items = call("list nodes", self.kube.core.list_node).items
        return [self._info(n) for n in items]

    def node_state(self, name: str) -> NodeState:
        return self._state(self._node(name))

    def _state(self, node: client.V1Node) -> NodeState:
        spec = node.spec or client.V1NodeSpec()
        name = str(node.metadata.name) if node.metadata else ""
        labels = (node.metadata.labels if node.metadata else None) or {}
        protected = any(key in labels for key in CONTROL_PLANE)
        if self.settings.node_faults == "docker" and not protected:
            status = _docker_status(name)
            if status == "paused":
                return NodeState.FROZEN
            if status not in (None, "running"):
                return NodeState.STOPPED
        if any(t.key == CRASH_TAINT for t in spec.taints or []) or not ready(node):
            return NodeState.STOPPED
        return NodeState.DRAINED if spec.unschedulable else NodeState.RUNNING

    # -- ZoneControl --------------------------------------------------------------------
    def zones(self) -> Sequence[str]:
        return sorted({n.zone for n in self.nodes() if n.zone and not n.protected})

    def nodes_in_zone(self, zone: str) -> Sequence[str]:
        return [n.name for n in self.nodes() if n.zone == zone and not n.protected]

    # -- faults -------------------------------------------------------------------------
    def _mark(self, name: str, fault: str, taint: bool) -> None:
        """Cordon (and taint), remembering the node's own ``unschedulable`` first."""

        def attempt() -> None:
            node = self._node(name)
            meta, spec = node.metadata, node.spec or client.V1NodeSpec()
            assert meta is not None
            notes = dict(meta.annotations or {})
            if FAULT not in notes:  # a second fault must not overwrite the original value
                notes[WAS_UNSCHEDULABLE] = "true" if spec.unschedulable else "false"
            notes[FAULT] = fault
            meta.annotations = notes
            spec.unschedulable = True
            taints = [t for t in spec.taints or [] if t.key != CRASH_TAINT]
            if taint:
                taints.append(client.V1Taint(key=CRASH_TAINT, value="true", effect="NoExecute"))
            spec.taints = taints or None
            node.spec = spec
            # PUT with the resourceVersion just read: a concurrent writer gets us a 409
            call(f"update node {name}", lambda: self.kube.core.replace_node(name, node))

        retry_conflicts(f"mark node {name}", attempt)

    def _pods_on(self, name: str) -> list[client.V1Pod]:
        pods = call(
            f"list pods on {name}",
            lambda: self.kube.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={name}"
            ),
        ).items
        return [p for p in pods if not _daemon_or_mirror(p)]

    def crash_node(self, name: str) -> None:
        self._refuse_protected(name)
        if self.settings.node_faults == "docker":
            self._mark(name, "crashed", taint=False)
            _docker("kill", name)  # SIGKILL to the node container: power loss
            return
        self._mark(name, "crashed", taint=True)
        for pod in self._pods_on(name):
            meta = pod.metadata
            assert meta is not None
            try:
                call(
                    f"delete pod {meta.name}",
                    lambda m=meta: self.kube.core.delete_namespaced_pod(  # type: ignore[misc]
                        str(m.name), str(m.namespace), grace_period_seconds=0
                    ),
                )
            except PlatformError as exc:
                if status_of(exc) != 404:  # already gone is what we wanted
                    raise

    def freeze_node(self, name: str) -> None:
        self._refuse_protected(name)
        if self.settings.node_faults != "docker":
            raise UnsupportedCapability(
                self.kind, "NodeControl.freeze_node",
                "a hung node has no API-server equivalent; use node_faults: docker on kind",
            )  # fmt: skip
        self._mark(name, "frozen", taint=False)
        _docker("pause", name)

    def drain_node(self, name: str) -> None:
        self._refuse_protected(name)
        self._mark(name, "drained", taint=False)
        deadline = time.monotonic() + self.settings.drain.timeout
        pending = self._pods_on(name)
        while pending:
            refused = []
            for pod in pending:
                if not self._evict(pod):
                    refused.append(pod)
            if not refused:
                break
            if time.monotonic() >= deadline:
                names = ", ".join(str(p.metadata.name) for p in refused if p.metadata)
                raise PlatformError(
                    f"drain of {name} timed out: PodDisruptionBudgets still refuse evicting "
                    f"{names} (never forced; the node stays cordoned until revert)"
                )
            time.sleep(self.settings.drain.retry_interval)
            pending = [p for p in self._pods_on(name) if p.metadata and p.metadata.name in
                       {r.metadata.name for r in refused if r.metadata}]  # fmt: skip

    def _evict(self, pod: client.V1Pod) -> bool:
        """True when evicted (or already gone); False when a PDB refused (429)."""
        meta = pod.metadata
        assert meta is not None
        options = None
        if self.settings.drain.grace_period is not None:
            options = client.V1DeleteOptions(grace_period_seconds=self.settings.drain.grace_period)
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=meta.name, namespace=meta.namespace),
            delete_options=options,
        )
        try:
            call(
                f"evict pod {meta.namespace}/{meta.name}",
                lambda: self.kube.core.create_namespaced_pod_eviction(
                    str(meta.name), str(meta.namespace), body
                ),
            )
        except PlatformError as exc:
            if status_of(exc) == 429:
                return False
            if status_of(exc) == 500 and MULTIPLE_PDBS in str(exc):
                # permanent, not a hiccup: retrying cannot help
                raise PlatformError(
                    f"cannot evict pod {meta.namespace}/{meta.name}: it is covered by more "
                    "than one PodDisruptionBudget, and the eviction API refuses such a pod "
                    "outright (HTTP 500) whatever the budgets allow; keep one budget per "
                    "pod (CloudNativePG makes its own for database pods)"
                ) from exc
            if status_of(exc) != 404:
                raise
        return True

    def restore_node(self, name: str) -> None:
        if self.settings.node_faults == "docker":
            status = _docker("inspect", "-f", "{{.State.Status}}", name).strip()
            if status == "paused":
                _docker("unpause", name)
            elif status != "running":
                _docker("start", name)

        def attempt() -> None:
            node = self._node(name)
            meta, spec = node.metadata, node.spec or client.V1NodeSpec()
            assert meta is not None
            notes = dict(meta.annotations or {})
            tainted = any(t.key == CRASH_TAINT for t in spec.taints or [])
            if FAULT not in notes and not tainted:
                return  # nothing of ours on it: idempotent
            spec.unschedulable = notes.get(WAS_UNSCHEDULABLE, "false") == "true" or None
            spec.taints = [t for t in spec.taints or [] if t.key != CRASH_TAINT] or None
            meta.annotations = {
                k: v for k, v in notes.items() if k not in (FAULT, WAS_UNSCHEDULABLE)
            }
            node.spec = spec
            call(f"update node {name}", lambda: self.kube.core.replace_node(name, node))

        retry_conflicts(f"restore node {name}", attempt)

    def _refuse_protected(self, name: str) -> None:
        """A second line behind the safety guard: the control plane is never touched."""
        if self._info(self._node(name)).protected:
            raise PlatformError(f"node {name} is a control-plane node and is never touched")


def _daemon_or_mirror(pod: client.V1Pod) -> bool:
    meta = pod.metadata or client.V1ObjectMeta()
    if "kubernetes.io/config.mirror" in (meta.annotations or {}):
        return True
    return any(ref.kind == "DaemonSet" for ref in meta.owner_references or [])


def _docker_status(name: str) -> str | None:
    """The node container's state; ``None`` when docker cannot be asked (no CLI, no
    engine: a plan on a machine without docker). Reading falls back to the API's view
    then; the docker faults themselves still fail loudly."""
    try:
        return _docker("inspect", "-f", "{{.State.Status}}", name).strip()
    except PlatformError:
        return None


def docker_problem() -> str | None:
    """Why ``node_faults: docker`` cannot act from here, or ``None`` when it can."""
    try:
        _docker("version", "--format", "{{.Server.Version}}")
    except PlatformError as exc:
        return str(exc)
    return None


def _docker(*args: str) -> str:
    """The docker CLI, for kind nodes (each node is a container named like the node)."""
    exe = shutil.which("docker")
    if exe is None:
        raise PlatformError("node_faults: docker needs the docker CLI on PATH")
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise PlatformError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
