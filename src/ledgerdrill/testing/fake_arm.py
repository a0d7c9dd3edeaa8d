"""A fake Azure Resource Manager over real HTTPS, for tests.

It answers the REST paths the official SDK clients call, with payloads built from
published API examples (``x-ms-examples`` files), and the ARM long-running-operation
protocol: ``202`` + ``Location`` (compute, as its examples show) or
``Azure-AsyncOperation`` + ``Location`` (PostgreSQL), ``Retry-After``, polling until a
terminal ``Succeeded`` / ``Failed`` with an ARM error. State changes land when an
operation completes, ``delay_s`` after it was accepted.

TLS is real (a self-signed certificate made here): azure-core refuses to send a
bearer token over plain HTTP, and verification stays on via ``connection_verify``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken

from ledgerdrill.platforms.azure.clients import ArmOverride
from ledgerdrill.testing.fake_arm_postgres import FakePostgres
from ledgerdrill.testing.fake_arm_postgres import arm_error_body as _error

SUB = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers"
VMSS_ACTION = re.compile(
    SUB + r"/Microsoft\.Compute/virtualMachineScaleSets/(?P<vmss>[^/]+)"
    r"/(?P<action>poweroff|deallocate|start|restart)$",
    re.I,
)
VMSS_VMS = re.compile(
    SUB + r"/Microsoft\.Compute/virtualMachineScaleSets/(?P<vmss>[^/]+)/virtualMachines$", re.I
)
PG_SERVER = re.compile(SUB + r"/Microsoft\.DBforPostgreSQL/flexibleServers/(?P<name>[^/]+)$", re.I)
PG_ENDPOINT = re.compile(
    SUB + r"/Microsoft\.DBforPostgreSQL/flexibleServers/(?P<name>[^/]+)"
    r"/virtualendpoints/(?P<ve>[^/]+)$",
    re.I,
)
PG_RESTART = re.compile(
    SUB + r"/Microsoft\.DBforPostgreSQL/flexibleServers/(?P<name>[^/]+)/restart$", re.I
)
OPERATION = re.compile(r"/fake-operations/(?P<id>[0-9a-f]+)/(?P<kind>status|result)$")
POWER_DURING = {"poweroff": "stopping", "deallocate": "deallocating", "start": "starting"}
POWER_AFTER = {"poweroff": "stopped", "deallocate": "deallocated", "start": "running"}


class FakeCredential:
    """A ``TokenCredential`` that hands out a dummy token (never a real one)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-arm-token", int(time.time()) + 3600)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    authorization: str


@dataclass
class Operation:
    id: str
    kind: str  # poweroff | deallocate | start | restart | failover | restore | promote
    due: float
    apply: Any  # Callable[[], None], run once when the operation completes
    error: tuple[str, str] | None = None  # (code, message) -> terminal Failed
    done: bool = False
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())


def _fixture(root: Path, relative: str) -> Any:
    return json.loads((root / relative).read_text(encoding="utf-8"))


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-arm")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fake-arm.crt", folder / "fake-arm.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FakeArm(FakePostgres):
    """State of the fake: scale sets, servers, operations, and every request seen."""

    def __init__(self, fixtures: Path, *, delay_s: float = 0.2, retry_after: str = "0") -> None:
        self.fixtures = fixtures
        self.delay_s = delay_s
        self.retry_after = retry_after
        self.requests: list[RecordedRequest] = []
        self.scale_sets: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.servers: dict[tuple[str, str], dict[str, Any]] = {}
        self.endpoints: dict[tuple[str, str, str], dict[str, Any]] = {}
        # called with (resource group, scale set, instance id, power) when a VM's power
        # changes: the kubelet of a composed fake cluster follows it
        self.on_power: Callable[[str, str, str, str], None] | None = None
        self.operations: dict[str, Operation] = {}
        self.failures: dict[str, tuple[str, str, bool]] = {}
        self.throttle = 0
        self.frozen = False  # operations never complete (timeout tests)
        self.lock = threading.RLock()
        self.base_url = ""
        self._vm_template = _fixture(
            fixtures, "compute/VirtualMachineScaleSetVM_List_WithResiliencyView.json"
        )["responses"]["200"]["body"]["value"][0]
        self._view_template = _fixture(
            fixtures,
            "compute/VirtualMachineScaleSetVM_Get_InstanceView_WithLifecycleHookState.json",
        )["responses"]["200"]["body"]
        self._server_template = _fixture(fixtures, "postgresql-flexible/ServersGet.json")[
            "responses"
        ]["200"]["body"]

    # -- set-up --------------------------------------------------------------------
    def add_scale_set(
        self, rg: str, vmss: str, instances: Mapping[str, str], location: str = "westeurope"
    ) -> None:
        """``instances``: instance id -> zone ("1", "2", "3"), in ``location``."""
        with self.lock:
            self.scale_sets[(rg.lower(), vmss)] = {
                iid: {"zone": zone, "power": "running", "location": location}
                for iid, zone in instances.items()
            }

    def fail_next(self, kind: str, code: str, message: str, *, at_start: bool = False) -> None:
        """The next ``kind`` operation fails: refused at once (``at_start``, an HTTP 400)
        or accepted and then ends ``Failed`` with this ARM error."""
        with self.lock:
            self.failures[kind] = (code, message, at_start)

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if re.search(pattern, r.path, re.I) and (method is None or r.method == method)
        ]

    # -- simulation ----------------------------------------------------------------
    def _advance(self) -> None:
        if self.frozen:
            return
        now = time.monotonic()
        for op in self.operations.values():
            if not op.done and now >= op.due:
                op.done = True
                if op.error is None:
                    op.apply()

    def _start(self, kind: str, apply: Any) -> Operation | tuple[str, str]:
        failure = self.failures.pop(kind, None)
        if failure is not None and failure[2]:
            return failure[0], failure[1]
        op = Operation(uuid.uuid4().hex, kind, time.monotonic() + self.delay_s, apply)
        if failure is not None:
            op.error = (failure[0], failure[1])
        self.operations[op.id] = op
        return op

    def _set_power(self, rg: str, vmss: str, iid: str, power: str) -> None:
        self.scale_sets[(rg.lower(), vmss)][iid]["power"] = power
        if self.on_power is not None:
            self.on_power(rg.lower(), vmss, iid, power)

    def _vm_body(self, rg: str, vmss: str, iid: str, vm: Mapping[str, Any], loc: str) -> Any:
        body = copy.deepcopy(self._vm_template)
        sub = "00000000-0000-0000-0000-000000000000"
        body["id"] = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{vmss}/virtualMachines/{iid}"
        )
        body["name"], body["instanceId"], body["location"] = f"{vmss}_{iid}", iid, loc
        body["zones"] = [vm["zone"]]
        view = copy.deepcopy(self._view_template)
        view["statuses"][1]["code"] = f"PowerState/{vm['power']}"
        view["statuses"][1]["displayStatus"] = f"VM {vm['power']}"
        body["properties"]["instanceView"] = view
        return body

    # -- request handling ----------------------------------------------------------
    def handle(
        self, method: str, url: str, body: Any, auth: str
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(RecordedRequest(method, parts.path, query, body, auth))
            if not auth.startswith("Bearer "):
                return 401, {}, _error("AuthenticationFailed", "no bearer token")
            if self.throttle > 0:
                self.throttle -= 1
                return 429, {"Retry-After": "0"}, _error("TooManyRequests", "throttled")
            self._advance()
            return self._route(method, parts.path, query, body)

    def _route(
        self, method: str, path: str, query: Mapping[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if "api-version" not in query and not path.startswith("/fake-operations"):
            return 400, {}, _error("MissingApiVersionParameter", "api-version is required")
        if m := OPERATION.match(path):
            return self._operation(m["id"], m["kind"])
        if (m := VMSS_ACTION.match(path)) and method == "POST":
            return self._vmss_action(m["rg"], m["vmss"], m["action"].lower(), body)
        if (m := VMSS_VMS.match(path)) and method == "GET":
            return self._vmss_list(m["rg"], m["vmss"], query)
        if m := PG_ENDPOINT.match(path):
            return self._pg_endpoint(method, m["rg"], m["name"], m["ve"])
        if (m := PG_RESTART.match(path)) and method == "POST":
            return self._pg_restart(m["rg"], m["name"], body or {})
        if m := PG_SERVER.match(path):
            if method == "GET":
                server = self.servers.get((m["rg"].lower(), m["name"]))
                if server is None:
                    return 404, {}, _error("ResourceNotFound", f"server {m['name']} not found")
                return 200, {}, server
            if method == "PUT":
                return self._pg_create(m["sub"], m["rg"], m["name"], body or {})
            if method == "PATCH":
                return self._pg_update(m["rg"], m["name"], body or {})
        return 404, {}, _error("NotFound", f"no route for {method} {path}")

    def _operation(self, op_id: str, kind: str) -> tuple[int, dict[str, str], Any]:
        op = self.operations.get(op_id)
        if op is None:
            return 404, {}, _error("NotFound", "no such operation")
        if kind == "status":  # Azure-AsyncOperation: always 200 with a status body
            status = "InProgress" if not op.done else ("Failed" if op.error else "Succeeded")
            payload: dict[str, Any] = {"name": op.id, "status": status, "startTime": op.started_at}
            if op.done and op.error:
                payload["error"] = {"code": op.error[0], "message": op.error[1]}
            headers = {} if op.done else {"Retry-After": self.retry_after}
            return 200, headers, payload
        if not op.done:  # Location: 202 while running
            return (
                202,
                {"Location": self._op_url(op, "result"), "Retry-After": self.retry_after},
                None,
            )
        if op.error:
            return 409, {}, _error(*op.error)
        return 200, {}, {}

    def _op_url(self, op: Operation, kind: str) -> str:
        return f"{self.base_url}/fake-operations/{op.id}/{kind}"

    def _accepted(self, op: Operation, async_header: bool) -> tuple[int, dict[str, str], Any]:
        headers = {"Location": self._op_url(op, "result"), "Retry-After": self.retry_after}
        if async_header:
            headers["Azure-AsyncOperation"] = self._op_url(op, "status")
        return 202, headers, None

    def _vmss_action(
        self, rg: str, vmss: str, action: str, body: Any
    ) -> tuple[int, dict[str, str], Any]:
        instances = self.scale_sets.get((rg.lower(), vmss))
        if instances is None:
            return 404, {}, _error("ResourceNotFound", f"scale set {vmss} not found")
        # ARM: no body (or no instanceIds) means every VM of the scale set
        ids = list(instances) if not body or not body.get("instanceIds") else body["instanceIds"]
        unknown = [i for i in ids if i not in instances]
        if unknown:
            return 400, {}, _error("InvalidParameter", f"unknown instance ids {unknown}")
        for iid in ids:
            if action in POWER_DURING:
                self._set_power(rg, vmss, iid, POWER_DURING[action])

        def apply() -> None:
            for iid in ids:
                self._set_power(rg, vmss, iid, POWER_AFTER.get(action, "running"))

        started = self._start(action, apply)
        if isinstance(started, tuple):
            return 400, {}, _error(*started)
        # the compute examples show 202 with a Location header only
        return self._accepted(started, async_header=False)

    def _vmss_list(
        self, rg: str, vmss: str, query: Mapping[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        instances = self.scale_sets.get((rg.lower(), vmss))
        if instances is None:
            return 404, {}, _error("ResourceNotFound", f"scale set {vmss} not found")
        values = []
        for iid, vm in instances.items():
            item = self._vm_body(rg, vmss, iid, vm, str(vm.get("location", "westeurope")))
            if query.get("$expand") != "instanceView":
                item["properties"].pop("instanceView", None)
            values.append(item)
        return 200, {}, {"value": values}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet tests
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        status, headers, payload = self.server.arm.handle(
            self.command, self.path, body, self.headers.get("Authorization", "")
        )
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("x-ms-request-id", uuid.uuid4().hex)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    arm: FakeArm


class FakeArmServer:
    """``with FakeArmServer(fixtures) as arm:`` -- ``arm.base_url``, ``arm.ca_file``."""

    def __init__(self, fixtures: Path, *, delay_s: float = 0.2) -> None:
        self.arm = FakeArm(fixtures, delay_s=delay_s)
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-arm-")
        cert, key = make_certificate(Path(self._tmp.name))
        self.ca_file = str(cert)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.arm = self.arm
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self.arm.base_url = self.base_url
        # a short shutdown poll: serve_forever's default 0.5 s made every stop() wait
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def override(self) -> ArmOverride:
        """What ``platforms.azure.clients.use_arm`` takes to send this process's Azure
        platforms here, with a dummy credential (no real token is ever asked for)."""
        return ArmOverride(self.base_url, self.ca_file, FakeCredential())

    def endpoint_file(self, path: Path) -> Path:
        """This fake's endpoint as a file, for a ``ledgerdrill`` process a test starts
        through ``tests/azure/ledgerdrill_with_fake_arm.py`` (which injects it)."""
        path.write_text(
            json.dumps({"base_url": self.base_url, "ca_file": self.ca_file}), encoding="utf-8"
        )
        return path

    def __enter__(self) -> FakeArmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._tmp.cleanup()
