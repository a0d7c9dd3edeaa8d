"""The connection to one cluster: kubeconfig context (allow-listed), typed API groups,
and the translation of the client's ``ApiException`` into ledgerdrill's errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from kubernetes import client, config
from ledgerdrill.errors import ConfigError, PlatformError, SafetyViolation

T = TypeVar("T")
# the client's default PATCH Content-Type is json-patch+json, which it rewrites to a
# strategic merge for dict bodies; custom resources reject strategic merge (415), so
# every patch names its content type explicitly
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
CNPG_GROUP, CNPG_VERSION, CNPG_PLURAL = "postgresql.cnpg.io", "v1", "clusters"


def resolve_context(kubeconfig: str | None, context: str | None) -> str:
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (OSError, config.ConfigException) as exc:
        raise ConfigError(f"kubeconfig {kubeconfig or '~/.kube/config'}: {exc}") from exc
    names = [str(c["name"]) for c in contexts]
    chosen = context or (str(current["name"]) if current else "")
    if chosen not in names:
        raise ConfigError(
            f"kubeconfig context {chosen!r} not found (contexts: {', '.join(names) or 'none'})"
        )
    return chosen


def check_allowed(context: str, allowed: list[str]) -> None:
    """Refuse before connecting: a typo must not point faults at the wrong cluster."""
    if not any(fnmatchcase(context, pattern) for pattern in allowed):
        raise SafetyViolation(
            f"kube context {context!r} is not allowed (platform.allowed_contexts: "
            f"{', '.join(allowed) or 'nothing'}); add it to the target file to drill it"
        )


@dataclass
class Kube:
    """Typed API groups of one context; ``call`` wraps every request."""

    context: str
    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    custom: client.CustomObjectsApi

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str) -> Kube:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False
        )
        return cls(
            context, api, client.CoreV1Api(api), client.AppsV1Api(api),
            client.CustomObjectsApi(api),
        )  # fmt: skip

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]


def call(what: str, fn: Callable[[], T]) -> T:
    """Run one API request; ``PlatformError`` naming the request and the API's reason."""
    try:
        return fn()
    except ApiException as exc:
        raise PlatformError(f"{what}: HTTP {exc.status} {reason(exc)}") from exc
    except OSError as exc:  # urllib3 connection errors derive from OSError
        raise PlatformError(f"{what}: cannot reach the API server: {exc}") from exc


def reason(exc: ApiException) -> str:
    import json

    try:
        body: dict[str, Any] = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason)
    return f"{body.get('reason', exc.reason)}: {body.get('message', '')}"


def status_of(exc: BaseException) -> int | None:
    cause = exc.__cause__ if isinstance(exc, PlatformError) else exc
    return int(cause.status) if isinstance(cause, ApiException) and cause.status else None


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, interval_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            raise PlatformError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def retry_conflicts(what: str, attempt: Callable[[], T], tries: int = 5) -> T:
    """Read-modify-PUT loops: a 409 Conflict (someone else wrote) means read again."""
    for _ in range(tries - 1):
        try:
            return attempt()
        except PlatformError as exc:
            if status_of(exc) != 409:
                raise
    return attempt()
