"""ReleaseControl (the ERP Deployment) and CacheControl (the Redis pods).

- roll_out: strategic-merge patch of the ERP container's image tag plus the
  ``kubernetes.io/change-cause`` annotation; returns once the deployment controller
  has observed the new generation (a *bad* release may never become available, which
  is what the probes measure, so availability is not waited for).
- roll_back: the ``kubectl rollout undo --to-revision`` equivalent: the newest
  ReplicaSet owned by the Deployment whose template runs ``to_version`` gives its
  template (without ``pod-template-hash``) back to the Deployment, by PUT with the
  resourceVersion read (optimistic locking); then waits for the rollout to finish.
- kill_cache: delete the cache pods with ``gracePeriodSeconds=0`` (Redis without
  persistence: the data is gone); the Deployment starts an empty one. The instance id
  is the pod's UID, which changes with every new pod.
"""

from __future__ import annotations

import copy

from kubernetes import client
from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import ReleaseInfo
from ledgerdrill.platforms.kubernetes.api import STRATEGIC, Kube, call, retry_conflicts, wait_for
from ledgerdrill.targets import KubernetesPlatformSettings

REVISION = "deployment.kubernetes.io/revision"


def _tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def _repo(image: str) -> str:
    head, _, last = image.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


class WorkloadOps:
    kube: Kube
    settings: KubernetesPlatformSettings

    # -- ReleaseControl -------------------------------------------------------------------
    def _deployment(self) -> client.V1Deployment:
        name, ns = self.settings.erp_deployment, self.settings.namespace
        return call(
            f"read deployment {ns}/{name}",
            lambda: self.kube.apps.read_namespaced_deployment(name, ns),
        )

    def _image(self, template: client.V1PodTemplateSpec | None) -> str:
        containers = template.spec.containers if template and template.spec else []
        for c in containers:
            if c.name == self.settings.erp_container:
                return str(c.image)
        raise PlatformError(
            f"deployment {self.settings.erp_deployment} has no container "
            f"{self.settings.erp_container!r}"
        )

    def current_release(self) -> ReleaseInfo:
        dep = self._deployment()
        image = self._image(dep.spec.template if dep.spec else None)
        ready = (dep.status.ready_replicas if dep.status else None) or 0
        return ReleaseInfo(_tag(image), replicas=ready, extra={"image": image})

    def _observed(self) -> bool:
        dep = self._deployment()
        meta, status = dep.metadata, dep.status
        return bool(meta and status and (status.observed_generation or 0) >= (meta.generation or 0))

    def _rolled_out(self) -> bool:
        dep = self._deployment()
        want = (dep.spec.replicas if dep.spec else None) or 0
        s = dep.status
        return (
            self._observed() and s is not None and (s.updated_replicas or 0) == want
            and (s.available_replicas or 0) == want and (s.replicas or 0) == want
        )  # fmt: skip

    def roll_out(self, version: str) -> ReleaseInfo:
        previous = self.current_release()
        image = f"{_repo(previous.extra['image'])}:{version}"
        patch = {
            "metadata": {"annotations": {"kubernetes.io/change-cause": f"ledgerdrill: {version}"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": self.settings.erp_container, "image": image}]}}},
        }  # fmt: skip
        name, ns = self.settings.erp_deployment, self.settings.namespace
        call(
            f"patch deployment {ns}/{name}",
            lambda: self.kube.apps.patch_namespaced_deployment(
                name, ns, patch, _content_type=STRATEGIC
            ),
        )
        wait_for(f"deployment {name} to observe {version}", self._observed,
                 self.settings.wait_timeout, self.settings.poll_interval)  # fmt: skip
        return previous

    def roll_back(self, to_version: str) -> None:
        name, ns = self.settings.erp_deployment, self.settings.namespace

        def attempt() -> None:
            dep = self._deployment()
            assert dep.metadata is not None
            assert dep.spec is not None
            owned = [
                rs for rs in call(
                    f"list replicasets of {name}",
                    lambda: self.kube.apps.list_namespaced_replica_set(ns),
                ).items
                if rs.metadata and any(
                    o.uid == dep.metadata.uid for o in rs.metadata.owner_references or []
                )
            ]  # fmt: skip
            matching = [
                rs for rs in owned
                if rs.spec and _tag(self._image(rs.spec.template)) == to_version
            ]  # fmt: skip
            if not matching:
                raise PlatformError(f"no ReplicaSet of {name} ran release {to_version}")
            best = max(
                matching,
                key=lambda rs: int((rs.metadata.annotations or {}).get(REVISION, 0)),  # type: ignore[union-attr]
            )
            assert best.spec is not None
            assert best.spec.template is not None
            template = copy.deepcopy(best.spec.template)
            if template.metadata and template.metadata.labels:
                template.metadata.labels.pop("pod-template-hash", None)
            dep.spec.template = template
            call(f"update deployment {ns}/{name}",
                 lambda: self.kube.apps.replace_namespaced_deployment(name, ns, dep))  # fmt: skip

        retry_conflicts(f"roll back {name}", attempt)
        wait_for(f"deployment {name} to roll back to {to_version}", self._rolled_out,
                 self.settings.wait_timeout, self.settings.poll_interval)  # fmt: skip

    # -- CacheControl ---------------------------------------------------------------------
    def _cache_pods(self) -> list[client.V1Pod]:
        selector, ns = str(self.settings.cache_selector), self.settings.namespace
        return call(
            f"list cache pods ({selector})",
            lambda: self.kube.core.list_namespaced_pod(ns, label_selector=selector),
        ).items

    def kill_cache(self) -> None:
        for pod in self._cache_pods():
            meta = pod.metadata
            assert meta is not None
            call(f"delete pod {meta.name}", lambda m=meta: self.kube.core.delete_namespaced_pod(  # type: ignore[misc]
                str(m.name), str(m.namespace), grace_period_seconds=0))  # fmt: skip

    def _ready_cache(self) -> list[client.V1Pod]:
        out = []
        for pod in self._cache_pods():
            conditions = (pod.status.conditions if pod.status else None) or []
            gone = pod.metadata is not None and pod.metadata.deletion_timestamp is not None
            if not gone and any(c.type == "Ready" and c.status == "True" for c in conditions):
                out.append(pod)
        return out

    def cache_alive(self) -> bool:
        return bool(self._ready_cache())

    def cache_instance(self) -> str:
        return ",".join(sorted(str(p.metadata.uid) for p in self._ready_cache() if p.metadata))

    def restore_cache(self) -> None:
        wait_for("a ready cache pod", self.cache_alive, self.settings.wait_timeout,
                 self.settings.poll_interval)  # fmt: skip
