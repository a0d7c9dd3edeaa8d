"""A fake Kubernetes API server over real HTTP on 127.0.0.1, for tests.

The official client talks to it end to end through a kubeconfig: the REST paths,
the JSON shapes (from ``fixtures/kubernetes``), the status codes and ``Status`` error
objects, resourceVersion with optimistic locking on PUT, strategic-merge / JSON-merge /
JSON patches by Content-Type, label and field selectors, watch streams, the Eviction
subresource (429 when a PodDisruptionBudget refuses) and status subresources.
It also runs a stand-in for Traefik: a TLS port that serves whatever certificate the
ingress TLS secret holds, or a default certificate when the secret is gone.

Not faithful: pods are deleted at once (no graceful termination phase), there is no
admission, no RBAC, no server-side apply, no protobuf, no chunked lists (``limit``).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from ledgerdrill.platforms.kubernetes import tls
from ledgerdrill.testing.fakeapi import cnpg, cnpg_schema, podexec
from ledgerdrill.testing.fakeapi.controllers import Controllers
from ledgerdrill.testing.fakeapi.store import (
    ApiError,
    Obj,
    Store,
    json_merge,
    json_patch,
    not_found,
    strategic_merge,
)

TOKEN = "ledgerdrill-fake-token"
KINDS = {
    "nodes": "Node", "pods": "Pod", "secrets": "Secret", "namespaces": "Namespace",
    "deployments": "Deployment", "replicasets": "ReplicaSet", "services": "Service",
    "poddisruptionbudgets": "PodDisruptionBudget", "clusters": "Cluster",
    "objectstores": "ObjectStore",
}  # fmt: skip
CLUSTER_SCOPED = {"nodes", "namespaces"}
WITH_STATUS = {"deployments", "clusters", "poddisruptionbudgets", "nodes", "pods"}


class _Route:
    def __init__(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            self.group, self.version, rest = "core", parts[1], parts[2:]
        else:
            self.group, self.version, rest = parts[1], parts[2], parts[3:]
        self.namespace: str | None = None
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            self.namespace, rest = rest[1], rest[2:]
        self.plural = rest[0]
        self.name = rest[1] if len(rest) > 1 else None
        self.sub = rest[2] if len(rest) > 2 else None
        self.collection = f"{self.group}/{self.plural}"
        self.api_version = self.version if self.group == "core" else f"{self.group}/{self.version}"
        self.kind = KINDS.get(self.plural, self.plural.rstrip("s").capitalize())

    @property
    def ns(self) -> str:
        return "" if self.plural in CLUSTER_SCOPED else self.namespace or "default"


class FakeKubernetes:
    """Start with ``start()``; ``kubeconfig(path)`` writes a kubeconfig for the client."""

    def __init__(self, *, ready_delay: float = 0.2, reschedule_delay: float = 0.5) -> None:
        self.store = Store()
        self.controllers = Controllers(
            self.store, ready_delay=ready_delay, reschedule_delay=reschedule_delay
        )
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content-type)
        # fields of custom resources the schema does not know: dropped, as the API server
        # drops them (see _validate_custom); a test reads this to catch a silent drop
        self.unknown_fields: list[str] = []
        self.written: list[Obj] = []  # every object as a client created or changed it
        self.ingress_secret: tuple[str, str] | None = None
        # what a command run by ``pods/exec`` does: the fake's containers run no programs
        self.exec_handler: podexec.ExecHandler | None = None
        self.exec_calls: list[podexec.ExecCall] = []
        self._stop = threading.Event()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self._ingress = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()  # dropped on stop, as a dead server does
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-kube-")
        default = tls.make_certificate(["traefik.default"], cn="TRAEFIK DEFAULT CERT")
        self._default_ctx = self._context(default.cert, default.key)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def ingress_port(self) -> int:
        return int(self._ingress.getsockname()[1])

    def start(self) -> FakeKubernetes:
        # serve_forever polls for shutdown every 0.5 s by default: every stop() waited for
        # it, ~0.25 s per fake on average, in each of the ~150 tests that start one
        serve = functools.partial(self._http.serve_forever, poll_interval=0.05)
        loops: dict[str, Callable[[], None]] = {
            "serve_forever": serve,
            "control_loop": self._control_loop,
            "serve_ingress": self._serve_ingress,
        }
        for name, loop in loops.items():
            thread = threading.Thread(target=loop, daemon=True, name=f"fake-kube-{name}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self._http.shutdown()
        self._http.server_close()
        for conn in list(self._connections):  # keep-alive connections die with the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._ingress.close()
        self._tmp.cleanup()

    def kubeconfig(self, path: Path, contexts: tuple[str, ...] = ("kind-ledgerdrill",)) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [{"name": c, "context": {"cluster": "fake", "user": "fake"}}
                         for c in contexts],
        }  # fmt: skip
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def wait_settled(self, timeout_s: float = 10.0) -> None:
        """Until every pod is Ready and every Deployment has all its replicas."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pods = self.store.list("core/pods", None)
            deps = self.store.list("apps/deployments", None)
            ready = all(
                c.get("status") == "True"
                for p in pods
                for c in p["status"].get("conditions", [])
                if c["type"] == "Ready"
            )
            full = all(
                (d.get("status") or {}).get("readyReplicas") == d["spec"].get("replicas", 1)
                and (d.get("status") or {}).get("replicas") == d["spec"].get("replicas", 1)
                for d in deps
            )
            if pods and ready and full:
                return
            time.sleep(0.05)
        raise TimeoutError("the fake cluster did not settle")

    # -- controllers and ingress -------------------------------------------------------
    def _control_loop(self) -> None:
        while not self._stop.wait(0.02):
            self.controllers.tick()

    def _context(self, cert: bytes, key: bytes) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        folder = Path(self._tmp.name)
        (folder / "c.pem").write_bytes(cert)
        (folder / "k.pem").write_bytes(key)
        ctx.load_cert_chain(folder / "c.pem", folder / "k.pem")
        return ctx

    def _serve_ingress(self) -> None:
        """Like Traefik with a TLSStore: the secret's certificate, else the default one."""
        while not self._stop.is_set():
            try:
                conn, _ = self._ingress.accept()
            except OSError:
                return
            ctx = self._default_ctx
            if self.ingress_secret is not None:
                secret = self.store.get("core/secrets", *self.ingress_secret)
                if secret is not None:
                    data = secret.get("data") or {}
                    with self.store.lock:
                        ctx = self._context(
                            base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
                        )
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.settimeout(2)
                    tls_conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            except (OSError, ssl.SSLError):
                conn.close()

    # -- HTTP --------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                fake._connections.add(self.connection)

            def finish(self) -> None:
                fake._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read ``fake.requests`` instead."""

            def _send(self, code: int, body: Obj, warnings: list[str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for warning in warnings or []:  # RFC 7234 warn-code 299, as the API server
                    escaped = warning.replace('"', '\\"')
                    self.send_header("Warning", f'299 - "{escaped}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _dispatch(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                ctype = (self.headers.get("Content-Type") or "").split(";")[0]
                fake.requests.append((method, url.path, ctype))
                try:
                    body = self._body()
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    if url.path.rstrip("/") == "/version":
                        self._send(200, VERSION)
                        return
                    route = _Route(url.path)
                    if route.plural == "pods" and route.sub == "exec":
                        self.close_connection = True  # a stream ends its connection
                        fake._exec(self, route, parse_qs(url.query))
                        return
                    if (
                        method == "GET"
                        and route.name is None
                        and query.get("watch") in ("1", "true")
                    ):
                        fake._watch(self, route, query)
                        return
                    warnings: list[str] = []
                    code, out = fake._handle(method, route, query, ctype, body, warnings)
                    self._send(code, out, warnings)
                except ApiError as err:
                    self._send(err.code, err.status())
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    self._send(400, ApiError(400, "BadRequest", str(exc)).status())

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

            def do_PATCH(self) -> None:
                self._dispatch("PATCH")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler

    def _handle(  # noqa: PLR0917 -- the request's parts, as the handler splits them
        self, method: str, route: _Route, query: dict[str, str], ctype: str, body: Any,
        warnings: list[str],
    ) -> tuple[int, Obj]:  # fmt: skip
        store, coll, ns = self.store, route.collection, route.ns
        if route.name is None:
            if method == "GET":
                items = store.list(
                    coll, None if route.namespace is None and ns != "" else ns,
                    query.get("labelSelector", ""), query.get("fieldSelector", ""),
                )  # fmt: skip
                if route.group == "core" or route.group in ("apps", "policy"):
                    for item in items:  # built-in lists carry no per-item kind/apiVersion
                        item.pop("kind", None), item.pop("apiVersion", None)
                return 200, {
                    "kind": f"{route.kind}List", "apiVersion": route.api_version,
                    "metadata": {"resourceVersion": str(store.rv)}, "items": items,
                }  # fmt: skip
            if method == "POST":
                body.setdefault("kind", route.kind)
                body.setdefault("apiVersion", route.api_version)
                self._validate_custom(body, warnings)
                if route.plural == "clusters":
                    cnpg.admit(body)  # the operator's validating webhook
                return 201, self._written(store.create(coll, ns, body))
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        if route.sub == "eviction" and method == "POST":
            self._written({"apiVersion": "policy/v1", "kind": "Eviction", **(body or {})})
            return self._evict(ns, route.name)
        current = store.get(coll, ns, route.name)
        if current is None:
            raise not_found(route.plural, route.name, "" if route.group == "core" else route.group)
        if method == "GET":
            return 200, current
        if method == "DELETE":
            return 200, store.delete(coll, ns, route.name)
        if method in ("PUT", "PATCH"):
            changed = body if method == "PUT" else self._patch(route, current, ctype, body)
            new = self._subresource(route, current, changed)
            if route.sub is None:
                self._validate_custom(new, warnings)
            stored = store.replace(coll, ns, route.name, new, check_rv=method == "PUT")
            return 200, self._written(stored)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    def _written(self, resource: Obj) -> Obj:
        """Keep a copy of what a client made or changed, for the tests to check against
        the Kubernetes schemas (the fake itself checks only the custom resources)."""
        self.written.append(copy.deepcopy(resource))
        return resource

    def _validate_custom(self, resource: Obj, warnings: list[str]) -> None:
        """The CRD's schema, as the API server applies it (``cnpg_schema``): a 422 for a
        wrong value; an unknown field dropped, with a warning, and noted in
        ``unknown_fields`` for the tests to read."""
        if (resource.get("apiVersion"), resource.get("kind")) not in cnpg_schema.SCHEMAS:
            return
        found = cnpg_schema.problems(resource)
        refused = [p for p in found if not p.unknown]
        if refused:
            kind, group = resource["kind"], str(resource["apiVersion"]).split("/")[0]
            name = (resource.get("metadata") or {}).get("name")
            listed = ", ".join(map(str, refused))
            raise ApiError(
                422, "Invalid",
                f'{kind}.{group} "{name}" is invalid: '
                + (f"[{listed}]" if len(refused) > 1 else listed),
            )  # fmt: skip
        unknown = [p for p in found if p.unknown]
        cnpg_schema.prune(resource, unknown)
        warnings.extend(p.message for p in unknown)
        self.unknown_fields.extend(
            f"{resource['kind']} {(resource.get('metadata') or {}).get('name')}: {p.path}"
            for p in unknown
        )

    @staticmethod
    def _patch(route: _Route, current: Obj, ctype: str, body: Any) -> Obj:
        merge: Callable[[Any, Any], Any]
        if ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(
                    400, "BadRequest",
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                )  # fmt: skip
            return json_patch(current, body)
        if ctype == "application/merge-patch+json":
            merge = json_merge
        elif ctype == "application/strategic-merge-patch+json":
            if route.group not in ("core", "apps", "policy"):
                raise ApiError(
                    415, "UnsupportedMediaType",
                    "strategic merge patch is not supported for custom resources",
                )  # fmt: skip
            merge = strategic_merge
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                f"application/strategic-merge-patch+json (got {ctype})",
            )
        result: Obj = merge(current, body)
        return result

    @staticmethod
    def _subresource(route: _Route, current: Obj, new: Obj) -> Obj:
        """The main resource ignores status changes; ``/status`` changes only status."""
        if route.plural not in WITH_STATUS:
            return new
        if route.sub == "status":
            return {**current, "status": new.get("status"), "metadata": {
                **current["metadata"], "resourceVersion": new.get("metadata", {}).get(
                    "resourceVersion", current["metadata"]["resourceVersion"])}}  # fmt: skip
        if route.plural in ("deployments", "clusters", "poddisruptionbudgets"):
            return {**new, "status": current.get("status")}
        return new

    def _exec(
        self, handler: BaseHTTPRequestHandler, route: _Route, query: dict[str, list[str]]
    ) -> None:
        """``pods/{name}/exec``: the API server's checks, then the kubelet's stream."""
        pod = self.store.get(route.collection, route.ns, str(route.name))
        if pod is None:
            raise not_found("pods", str(route.name))
        if (handler.headers.get("Upgrade") or "").lower() != "websocket":
            # kubectl's SPDY upgrade is not modelled; a plain request is refused as the
            # API server refuses it
            raise ApiError(400, "BadRequest", "Upgrade request required")
        wanted = (query.get("container") or [""])[-1]
        container = podexec.resolve_container(pod, str(route.name), wanted or None)
        call = podexec.ExecCall(
            route.ns, str(route.name), container, tuple(query.get("command") or [])
        )
        self.exec_calls.append(call)
        handler_fn = self.exec_handler or podexec.no_programs
        podexec.serve(handler.wfile, handler.headers, lambda: handler_fn(call))

    def _evict(self, ns: str, name: str) -> tuple[int, Obj]:
        with self.store.lock:
            pod = self.store.get("core/pods", ns, name)
            if pod is None:
                raise not_found("pods", name)
            self.controllers.check_eviction(ns, pod)
            self.store.delete("core/pods", ns, name)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                     "status": "Success", "code": 201}  # fmt: skip

    def _watch(self, handler: BaseHTTPRequestHandler, route: _Route, query: dict[str, str]) -> None:
        """A chunked stream of ``{"type", "object"}`` lines (fixtures/watch-pods-stream.jsonl)."""
        from ledgerdrill.testing.fakeapi.store import match_fields, match_labels

        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        deadline = time.monotonic() + min(float(query.get("timeoutSeconds", 30)), 30.0)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def emit(kind: str, obj: Obj) -> None:
            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            handler.wfile.flush()

        ns = None if route.namespace is None and route.ns != "" else route.ns
        if "resourceVersion" in query and query["resourceVersion"] not in ("", "0"):
            rv = int(query["resourceVersion"])
        else:
            with self.store.lock:
                rv = self.store.rv
                initial = self.store.list(route.collection, ns, labels, fields)
            for obj in initial:
                emit("ADDED", obj)
        try:
            while time.monotonic() < deadline and not self._stop.is_set():
                with self.store.lock:
                    events = list(self.store.events_since(route.collection, rv))
                    rv = self.store.rv
                    if not events:
                        self.store.changed.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                for event in events:
                    meta = event.obj["metadata"]
                    if (
                        (ns is None or meta.get("namespace", "") == ns)
                        and match_labels(meta.get("labels") or {}, labels)
                        and match_fields(event.obj, fields)
                    ):
                        emit(event.type, event.obj)
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return


VERSION = {
    "major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "fake",
    "gitTreeState": "clean", "buildDate": "2025-05-21T00:00:00Z", "goVersion": "go1.24.2",
    "compiler": "gc", "platform": "linux/amd64",
}  # fmt: skip
