"""Cache loss: the session and cache store dies; whatever was in it is gone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import CacheControl, Platform
from ledgerdrill.target_kinds import TargetKind


@register_fault
class CacheLoss(Fault):
    kind = "cache-loss"
    capability = CacheControl

    def __init__(self, platform: Platform, cache: str = "cache") -> None:
        super().__init__(platform)
        self.cache = cache
        self.control = platform.capability(CacheControl)
        self.instance_before: str | None = None

    def prepare(self) -> None:
        self.instance_before = self.control.cache_instance()

    def undo_state(self) -> JSONParams:
        return {"instance_before": self.instance_before}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        self.instance_before = state.get("instance_before")

    def describe(self) -> str:
        return f"kill the {self.cache} (sessions and cached data are lost)"

    def targets(self) -> Sequence[TargetRef]:
        return [TargetRef(TargetKind.CACHE, self.cache)]

    def params(self) -> JSONParams:
        return {"cache": self.cache}

    def inject(self) -> None:
        self.control.kill_cache()

    def verify(self) -> Evidence:
        # an orchestrator may restart it at once: proof is that it is gone *or* a new,
        # empty instance replaced the one we saw before
        if not self.control.cache_alive():
            return Evidence(f"{self.cache} is down")
        now = self.control.cache_instance()
        if now != self.instance_before:
            return Evidence(f"{self.cache} restarted empty (instance {now})")
        raise FaultError(f"{self.cache} still runs the same instance {now}")

    def revert(self) -> None:
        self.control.restore_cache()
