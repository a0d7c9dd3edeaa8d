"""The ERP part of the sandbox daemon: the reference ERP's replicas on the ERP nodes.

Each replica is a reschedulable ``Service`` (``erp-a-1``, ``dr-erp-1``...) that reads
its settings from one 0600 config file -- the database DSN holds a password, so it is
never put on a command line. Changing the release or the database is a rolling
restart: one replica at a time, each healthy again before the next goes, with the
supervisor held off so it does not "repair" a replica we are replacing on purpose.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.erp.config import ErpConfig
from ledgerdrill.platforms.sandbox.erp.schema import ensure_schema
from ledgerdrill.platforms.sandbox.procs import wait_until
from ledgerdrill.platforms.sandbox.services import Service
from ledgerdrill.platforms.sandbox.topology import Topology
from ledgerdrill.ports import free_port

ADMIN_LOGIN = "admin"
DEFAULT_RELEASE = "2026.11.0"
READY_TIMEOUT_S = 30.0
DRAIN_S = 0.5  # Traefik's reload throttle (100 ms) plus requests in flight


def _nothing_held() -> AbstractContextManager[None]:
    return contextlib.nullcontext()


class ErpComponent:
    name = "erp"

    def __init__(
        self,
        state_dir: Path,
        topology: Topology,
        *,
        replicas_per_node: int,
        dsn: Callable[[], str],
        redis_url: Callable[[str], str | None],
    ) -> None:
        self.state_dir = state_dir
        self.folder = state_dir / "erp"
        self.topology = topology
        self._dsn = dsn
        self._redis_url = redis_url  # by region: each region has its own session cache
        # set by the assembly once the supervisor exists (it is built from our services)
        self.hold_supervisor: Callable[[], AbstractContextManager[None]] = _nothing_held
        self.on_backends_changed: Callable[[], None] = lambda: None
        self.release = DEFAULT_RELEASE
        self.defect: str | None = None
        self.releases: list[tuple[str, str | None]] = []  # what roll_back returns to
        self._lock = threading.RLock()
        self.draining: set[str] = set()  # replicas taken out of the load balancer
        self.replicas: list[Service] = []
        for spec in topology.with_role("erp"):
            for index in range(1, replicas_per_node + 1):
                self.replicas.append(self._replica(f"{spec.name}-{index}", spec.name))

    def config_path(self, region: str) -> Path:
        return self.folder / ("config.json" if region == "primary" else f"config-{region}.json")

    def _replica(self, name: str, home: str) -> Service:
        home_port = free_port()
        config = self.config_path(self.topology.node(home).region)

        def launcher(node: str) -> tuple[Sequence[str], int]:
            # at home it keeps its port (the load balancer's list stays put); a stand-in
            # elsewhere gets a fresh one and the assembly tells Traefik
            port = home_port if node == home else free_port()
            argv = [
                sys.executable,
                "-m",
                "ledgerdrill.platforms.sandbox.erp",
                "--config",
                str(config),
                "--port",
                str(port),
                "--replica",
                name,
            ]
            return argv, port

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        service = Service(name, home, self.state_dir, launcher, reschedulable=True, env=env)
        service.on_started = lambda _s: self.on_backends_changed()
        return service

    # -- secrets and config ----------------------------------------------------------------
    @property
    def admin_password(self) -> str:
        return self._secret("admin-password", lambda: secrets.token_urlsafe(18))

    @property
    def admin_api_key(self) -> str:
        """The demo user's API key for Odoo 19's JSON-2 (``Authorization: bearer``): 160
        random bits in hex, as Odoo generates them (``res.users.apikeys``)."""
        return self._secret("admin-api-key", lambda: secrets.token_hex(20))

    def _secret(self, name: str, make: Callable[[], str]) -> str:
        path = self.folder / name
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(make())
        return path.read_text().strip()

    def write_config(self) -> None:
        for region in self.topology.regions():
            ErpConfig(
                dsn=self._dsn(),
                redis_url=self._redis_url(region),
                database="ledgerdrill",
                release=self.release,
                defect=self.defect,
            ).write(self.config_path(region))

    # -- Component ---------------------------------------------------------------------------
    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ensure_schema(self._dsn(), ADMIN_LOGIN, self.admin_password, self.admin_api_key)
        self.write_config()
        for replica in self.replicas:
            replica.start()
        with ThreadPoolExecutor(max_workers=len(self.replicas)) as pool:
            list(pool.map(self.wait_ready, self.replicas))

    def stop(self) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(self.replicas))) as pool:
            list(pool.map(lambda r: r.stop(timeout_s=5), self.replicas))
        # a stand-in may have left its original frozen on another node: sweep both
        for replica in self.replicas:
            if replica.evicted_from:
                replica.stop(timeout_s=5, node=replica.evicted_from)

    def services(self) -> list[Service]:
        return list(self.replicas)

    def status(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "defect": self.defect,
            "replicas": [
                {
                    "name": r.name,
                    "node": r.node,
                    "port": r.port,
                    "pid": r.pid,
                    "alive": r.alive(),
                    "restarts": r.restarts,
                }
                for r in self.replicas
            ],
        }

    # -- what Traefik routes to ---------------------------------------------------------------
    def backend_urls(self, topology: Topology) -> tuple[list[str], list[str]]:
        """(primary region URLs, dr region URLs), from where each replica runs now."""
        primary: list[str] = []
        dr: list[str] = []
        for replica in self.replicas:
            if replica.port is None or replica.name in self.draining:
                continue
            url = f"http://127.0.0.1:{replica.port}"
            region = topology.node(replica.node).region
            (dr if region == "dr" else primary).append(url)
        return primary, dr

    # -- readiness and rolling restarts ---------------------------------------------------------
    def wait_ready(self, replica: Service, timeout_s: float = READY_TIMEOUT_S) -> None:
        def healthy() -> bool:
            if not replica.alive():
                raise PlatformError(
                    f"ERP replica {replica.name} exited while starting: {_tail(replica)}"
                )
            try:
                return httpx.get(
                    f"http://127.0.0.1:{replica.port}/web/health", timeout=1
                ).is_success
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout_s=timeout_s, what=f"ERP replica {replica.name} to answer")

    def rolling_restart(self, replicas: Sequence[Service] | None = None) -> list[str]:
        with self._lock, self.hold_supervisor():
            done: list[str] = []
            for replica in replicas if replicas is not None else self.replicas:
                if not replica.alive():
                    continue  # its node is down: it starts with the new config when it returns
                # drain first: out of Traefik's list before it stops (a restart Traefik
                # only learns of from a failed health check costs users errors -- the
                # bad-release drill saw them), back in once it answers again
                self.draining.add(replica.name)
                self.on_backends_changed()
                time.sleep(DRAIN_S)
                replica.stop(timeout_s=5)
                replica.start()
                self.wait_ready(replica)
                self.draining.discard(replica.name)
                self.on_backends_changed()
                done.append(replica.name)
            return done

    def roll_out(self, release: str, defect: str | None) -> list[str]:
        with self._lock:
            self.releases.append((self.release, self.defect))
            self.release, self.defect = release, defect
            self.write_config()
            return self.rolling_restart()

    def roll_back(self) -> str:
        with self._lock:
            if not self.releases:
                return self.release
            self.release, self.defect = self.releases.pop()
            self.write_config()
            self.rolling_restart()
            return self.release

    def reconfigure(self) -> list[str]:
        """The database or the cache moved: write the config and restart every replica."""
        with self._lock:
            self.write_config()
            return self.rolling_restart()


def _tail(replica: Service, chars: int = 1500) -> str:
    try:
        return replica.log_path().read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no log)"
