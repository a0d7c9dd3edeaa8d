"""Bad release: a defective version is rolled out everywhere; revert rolls back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import Platform, ReleaseControl
from ledgerdrill.runbook.steps import ReleaseRollback
from ledgerdrill.target_kinds import TargetKind


@register_fault
class BadRelease(Fault):
    kind = "bad-release"
    capability = ReleaseControl

    def __init__(self, platform: Platform, version: str) -> None:
        super().__init__(platform)
        self.version = version
        self.releases = platform.capability(ReleaseControl)
        self.previous: str | None = None

    def prepare(self) -> None:
        self.previous = self.releases.current_release().version
        if self.previous == self.version:
            raise FaultError(f"release {self.version} is already running")

    def undo_state(self) -> JSONParams:
        return {"previous": self.previous}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        self.previous = state.get("previous")

    def describe(self) -> str:
        return f"roll out release {self.version} to every replica"

    def targets(self) -> Sequence[TargetRef]:
        return [TargetRef(TargetKind.RELEASE, self.version)]

    def params(self) -> JSONParams:
        return {"version": self.version}

    def inject(self) -> None:
        self.releases.roll_out(self.version)

    def verify(self) -> Evidence:
        current = self.releases.current_release()
        if current.version != self.version:
            raise FaultError(f"release {current.version} runs, expected {self.version}")
        return Evidence(f"release {current.version} runs on {current.replicas} replicas")

    def recovery(self) -> ReleaseRollback:
        step = ReleaseRollback(self.platform)
        step.resolves = self
        return step

    def revert(self) -> None:
        if self.previous is None:
            return
        if self.releases.current_release().version != self.previous:
            self.releases.roll_back(self.previous)
