"""The ERP login the probes and the load use, from the platform's own state: the Secret
``erp_login_secret`` in the namespace (keys ``login``, ``password``, optional
``database``), never from a file in the repository. ``database`` (the Odoo database
name clients send) falls back to the reference ERP's ``erp.json``."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.kubernetes.api import call, status_of

if TYPE_CHECKING:
    from ledgerdrill.platforms.kubernetes.platform import KubernetesPlatform


def _decoded(data: Mapping[str, bytes | str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


def erp_login(platform: KubernetesPlatform) -> dict[str, str]:
    """``login``/``password``/``database`` found; an absent Secret gives none of them
    (a run that needs them then says so, naming what is missing)."""
    facts: dict[str, str] = {}
    name, ns = platform.settings.erp_login_secret, platform.settings.namespace
    if name is not None:
        try:
            secret = call(
                f"read secret {ns}/{name}",
                lambda: platform.kube.core.read_namespaced_secret(name, ns),
            )
            found = _decoded(secret.data)
            facts.update({k: found[k] for k in ("login", "password", "database") if found.get(k)})
        except PlatformError as exc:
            if status_of(exc) != 404:
                raise
    if "database" not in facts:
        try:
            config_secret = platform._erp_config_secret()
        except PlatformError:
            config_secret = None
        if config_secret is not None:
            config = json.loads(_decoded(config_secret.data).get("erp.json") or "{}")
            if config.get("database"):
                facts["database"] = str(config["database"])
    return facts
