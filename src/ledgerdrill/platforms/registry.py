"""Build the platform a target file names: the one place that knows every backend.

It imports only ``platforms/`` (each backend's settings model, built lazily its platform)
and the shared errors; the target file's model is a type here, never imported at run time
(``tests/unit/test_layering.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ledgerdrill.errors import ConfigError
from ledgerdrill.platforms.azure.settings import (
    AzureClusterSettings,
    AzureDatabaseSettings,
    AzurePlatformSettings,
)
from ledgerdrill.platforms.base import Platform
from ledgerdrill.platforms.fake_settings import FakePlatformSettings
from ledgerdrill.platforms.kubernetes.settings import (
    KubernetesDrainSettings,
    KubernetesPlatformSettings,
)
from ledgerdrill.platforms.sandbox.settings import SandboxPlatformSettings

if TYPE_CHECKING:  # the target file's model; the registry only reads it
    from ledgerdrill.targets import Target


# a target file's ``platform``: one backend's settings, chosen by ``kind``
PlatformSettings = Annotated[
    SandboxPlatformSettings
    | FakePlatformSettings
    | AzurePlatformSettings
    | KubernetesPlatformSettings,
    Field(discriminator="kind"),
]
__all__ = [
    "AzureClusterSettings",
    "AzureDatabaseSettings",
    "AzurePlatformSettings",
    "FakePlatformSettings",
    "KubernetesDrainSettings",
    "KubernetesPlatformSettings",
    "PlatformSettings",
    "SandboxPlatformSettings",
    "bring_up_for_run",
    "build_platform",
    "preflight",
]


def build_platform(target: Target) -> Platform:
    settings = target.platform
    if isinstance(settings, FakePlatformSettings):
        from ledgerdrill.platforms.fake import FakePlatform

        return FakePlatform(
            target.name,
            target.resolve_path(settings.state_file),
            settings.nodes,
            heal_after_s=settings.heal_after,
            capabilities=settings.capabilities,
            entry_url=settings.entry_url,
        )
    if isinstance(settings, SandboxPlatformSettings):
        from ledgerdrill.platforms.sandbox.platform import SandboxPlatform

        return SandboxPlatform.from_settings(target, settings)
    if isinstance(settings, KubernetesPlatformSettings):
        from ledgerdrill.platforms.kubernetes import KubernetesPlatform

        return KubernetesPlatform.from_settings(target, settings)
    if isinstance(settings, AzurePlatformSettings):
        from ledgerdrill.platforms.azure.clients import azure_platform_from_target

        return azure_platform_from_target(target, settings)
    raise ConfigError(f"platform kind {settings.kind!r} has no backend")


def bring_up_for_run(target: Target, say: Callable[[str], None]) -> Callable[[], None] | None:
    """A platform the harness runs itself (the sandbox) is started for a game day when it
    is not running. Returns how to take it down again when this run started it."""
    if isinstance(target.platform, SandboxPlatformSettings):
        from ledgerdrill.platforms.sandbox.cli import start_for_run

        return start_for_run(target, target.platform, say)
    return None


def preflight(target: Target) -> None:
    """Before pytest starts: refuse (``SafetyViolation``) a target whose platform reaches
    beyond its allowlist, e.g. an AKS kube context whose nodes live in a subscription or
    resource group the target does not allow. Reads the node list only; no ARM call."""
    if isinstance(target.platform, KubernetesPlatformSettings):
        from ledgerdrill.platforms.kubernetes.platform import allowed_contexts

        allowed_contexts(target, target.platform)  # reads the kubeconfig; connects nowhere
        return
    if not isinstance(target.platform, AzurePlatformSettings):
        return
    platform = build_platform(target)
    try:
        check = getattr(platform, "check_scope", None)
        if callable(check):
            check()
    finally:
        platform.close()
