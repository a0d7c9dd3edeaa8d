"""``ledgerdrill sandbox status``: the daemon's status for people (a table) or scripts (JSON)."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

SECRET_KEYS = {"password", "admin_password", "api_key"}


def public(status: dict[str, Any], *, show_secrets: bool) -> dict[str, Any]:
    """The status without secrets unless asked (the demo password is for scripts)."""
    if show_secrets:
        return status
    masked: dict[str, Any] = json.loads(json.dumps(status, default=str), object_hook=_mask)
    return masked


def _mask(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: ("********" if k in SECRET_KEYS and v else v) for k, v in obj.items()}


def render(status: dict[str, Any], width: int = 110) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    phase = status.get("phase", "?")
    console.print(
        f"sandbox: {phase}"
        + (f" (cold start {status['cold_start_s']}s)" if "cold_start_s" in status else "")
        + (f", {status['memory_mb']:.0f} MiB resident" if "memory_mb" in status else "")
    )
    for key, label in (("entry_url", "entry"), ("ca_bundle", "CA bundle"), ("database", "database"),
                       ("login", "demo login")):  # fmt: skip
        if status.get(key):
            console.print(f"  {label:11} {status[key]}")
    table = Table("region", "zone", "node", "process", "pid", "port", "state")
    for node in status.get("nodes", []):
        processes = node.get("processes") or [{}]
        for proc in processes:
            table.add_row(
                node.get("region", ""), node.get("zone", ""), node.get("name", ""),
                proc.get("name", "—"), str(proc.get("pid", "—")), str(proc.get("port", "—")),
                proc.get("state", node.get("state", "")),
            )  # fmt: skip
    console.print(table)
    return buffer.getvalue().rstrip()
