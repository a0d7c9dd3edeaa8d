"""The fake API server's object store: resourceVersion, optimistic locking, patches,
label and field selectors, and the event log that watch streams read.

Objects are plain JSON dicts exactly as the API serialises them. One lock guards
everything: the fake is for tests, correctness beats concurrency.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

# strategic-merge-patch list merge keys (from the API's patchMergeKey tags) for the fields
# the backend patches; other lists are replaced, as for lists without a merge key
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "name",
    "conditions": "type",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


class ApiError(Exception):
    """Becomes a ``Status`` object with this code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:  # metav1.Status.Reason is omitempty: upstream leaves some out
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind: str, name: str, group: str = "") -> ApiError:
    """Shaped like fixtures/kubernetes/status-404-*.json."""
    details: Obj = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    label = f"{kind}.{group}" if group else kind
    return ApiError(404, "NotFound", f'{label} "{name}" not found', details)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def json_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = json_merge(out.get(key), value)
    return out


def strategic_merge(target: Any, patch: Any, key: str = "") -> Any:
    """Strategic merge patch: like a merge patch, but lists with a merge key merge by it."""
    if isinstance(patch, list) and isinstance(target, list) and key in MERGE_KEYS:
        mkey = MERGE_KEYS[key]
        out = [copy.deepcopy(item) for item in target]
        for item in patch:
            if not isinstance(item, dict) or mkey not in item:
                raise ApiError(
                    400, "BadRequest", f"map: {item} does not contain declared merge key: {mkey}"
                )
            index = next((i for i, cur in enumerate(out) if cur.get(mkey) == item[mkey]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    out.pop(index)
            elif index is None:
                out.append(copy.deepcopy(item))
            else:
                out[index] = strategic_merge(out[index], item)
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out_map = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            out_map.pop(name, None)
        else:
            out_map[name] = strategic_merge(out_map.get(name), value, name)
    return out_map


def json_patch(target: Obj, ops: list[Any]) -> Obj:
    """RFC 6902 for the operations the backend could send (add, replace, remove, test)."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op["op"] == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise ApiError(422, "Invalid", f"the test operation on {op['path']} failed")
    return doc


def match_labels(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors (``a=b,c!=d,e``), the syntax the backend sends."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def match_fields(obj: Obj, selector: str) -> bool:
    """Field selectors on dotted paths (``spec.nodeName=x``, ``metadata.name=y``)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        path, value = term.split("!=" if negate else "=", 1)
        current: Any = obj
        for part in path.lstrip("=").split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (str(current or "") == value) == negate:
            return False
    return True


@dataclass
class WatchEvent:
    rv: int
    collection: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj


@dataclass
class Store:
    """Collections keyed by ``"<group>/<plural>"``; objects by ``(namespace, name)``."""

    objects: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=dict)
    events: list[WatchEvent] = field(default_factory=list)
    rv: int = 1000
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def _bump(self, collection: str, kind: str, obj: Obj) -> None:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.events.append(WatchEvent(self.rv, collection, kind, copy.deepcopy(obj)))
        del self.events[:-5000]
        self.changed.notify_all()

    def get(self, collection: str, ns: str, name: str) -> Obj | None:
        with self.lock:
            found = self.objects.get(collection, {}).get((ns, name))
            return copy.deepcopy(found) if found is not None else None

    def list(
        self, collection: str, ns: str | None, labels: str = "", fields: str = ""
    ) -> list[Obj]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for (o_ns, _), o in sorted(self.objects.get(collection, {}).items())
                if (ns is None or o_ns == ns)
                and match_labels(o["metadata"].get("labels") or {}, labels)
                and match_fields(o, fields)
            ]

    def create(self, collection: str, ns: str, obj: Obj) -> Obj:
        with self.lock:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            key = (ns, meta["name"])
            bucket = self.objects.setdefault(collection, {})
            if key in bucket:
                plural = collection.rsplit("/", maxsplit=1)[-1]
                raise ApiError(
                    409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists',
                    {"name": meta["name"], "kind": plural},
                )  # fmt: skip
            if ns:
                meta["namespace"] = ns
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_iso())
            meta.setdefault("generation", 1)
            bucket[key] = obj
            self._bump(collection, "ADDED", obj)
            return copy.deepcopy(obj)

    def replace(self, collection: str, ns: str, name: str, obj: Obj, *, check_rv: bool) -> Obj:
        """PUT: optimistic locking on ``metadata.resourceVersion`` when the client sends one."""
        with self.lock:
            current = self.objects.get(collection, {}).get((ns, name))
            if current is None:
                raise not_found(collection.rsplit("/", maxsplit=1)[-1], name)
            sent = (obj.get("metadata") or {}).get("resourceVersion")
            if check_rv and sent and sent != current["metadata"]["resourceVersion"]:
                plural = collection.rsplit("/", maxsplit=1)[-1]
                raise ApiError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {plural} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "kind": plural},
                )  # fmt: skip
            meta = obj.setdefault("metadata", {})
            for keep in ("uid", "creationTimestamp", "namespace", "name"):
                if keep in current["metadata"]:
                    meta[keep] = current["metadata"][keep]
            spec_changed = obj.get("spec") != current.get("spec")
            meta["generation"] = current["metadata"].get("generation", 1) + int(spec_changed)
            self.objects[collection][(ns, name)] = obj
            self._bump(collection, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def update(self, collection: str, ns: str, name: str, change: Callable[[Obj], Obj]) -> Obj:
        """Read-modify-write under the lock (controllers and PATCH)."""
        with self.lock:
            current = self.get(collection, ns, name)
            if current is None:
                raise not_found(collection.rsplit("/", maxsplit=1)[-1], name)
            return self.replace(collection, ns, name, change(current), check_rv=False)

    def delete(self, collection: str, ns: str, name: str) -> Obj:
        with self.lock:
            obj = self.objects.get(collection, {}).pop((ns, name), None)
            if obj is None:
                raise not_found(collection.rsplit("/", maxsplit=1)[-1], name)
            obj["metadata"]["deletionTimestamp"] = now_iso()
            self._bump(collection, "DELETED", obj)
            return obj

    def events_since(self, collection: str, rv: int) -> Iterator[WatchEvent]:
        with self.lock:
            pending = [e for e in self.events if e.rv > rv and e.collection == collection]
        yield from pending
