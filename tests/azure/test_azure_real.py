"""Read-only checks against a real subscription: ``pytest -m azure`` with credentials.

Set LEDGERDRILL_AZURE_TARGET to a target file; DefaultAzureCredential must find a login.
Nothing here changes anything: it lists scale-set instances and reads the server.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.azure


def _target_or_skip() -> str:
    path = os.environ.get("LEDGERDRILL_AZURE_TARGET")
    if not path:
        reason = "no real subscription: set LEDGERDRILL_AZURE_TARGET and log in (az login)"
        print(reason)
        pytest.skip(reason)
    try:
        from azure.identity import DefaultAzureCredential

        DefaultAzureCredential().get_token("https://management.azure.com/.default")
    except Exception as exc:
        reason = f"no Azure credentials: {exc}"
        print(reason)
        pytest.skip(reason)
    return path


def test_real_subscription_plan_is_readable() -> None:
    from ledgerdrill.platforms.registry import build_platform
    from ledgerdrill.targets import load_target

    platform = build_platform(load_target(_target_or_skip()))
    try:
        plan = platform.describe()
        assert plan["kind"] == "azure"
        assert isinstance(plan["regions"], dict), plan["regions"]  # region -> zone -> instances
    finally:
        platform.close()
