"""The run's platform baseline: read at the first steady-state gate, compared after
every scenario and before the next one starts (``platforms.shape`` defines the shape
and the one equivalence allowed).

A scenario that leaves the platform different fails its ``platform-restored`` check;
the next scenario's gate refuses to drill a platform that is not back (it would
measure the wrong thing: a zone outage of a cluster that has already lost its
standby proves nothing about RPO 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ledgerdrill.platforms.base import Platform
from ledgerdrill.platforms.shape import BaselineCheck, PlatformShape, await_baseline, read_shape
from ledgerdrill.safety.bounded import bounded

# one capability read that hangs must not hang the comparison
READ_TIMEOUT_S = 30.0


def reader(platform: Platform, timeout_s: float = READ_TIMEOUT_S) -> Callable[[], PlatformShape]:
    def read() -> PlatformShape:
        return read_shape(platform, call=lambda fn, what: bounded(fn, timeout_s, what))

    return read


@dataclass
class RunBaseline:
    """One per run (shared by its scenarios)."""

    reference: PlatformShape | None = None
    taken_by: str | None = None  # the scenario whose gate read it
    # the last scenario that left the platform not restored, and what differed
    broken_by: str | None = None
    broken: tuple[str, ...] = ()

    def record(self, scenario: str, shape: PlatformShape) -> None:
        if self.reference is None:
            self.reference = shape
            self.taken_by = scenario

    def check(
        self, platform: Platform, *, timeout_s: float, interval_s: float = 1.0
    ) -> BaselineCheck | None:
        """Wait (bounded) for the platform to read back as the reference; None when
        there is no reference yet."""
        if self.reference is None:
            return None
        return await_baseline(
            reader(platform), self.reference, timeout_s=timeout_s, interval_s=interval_s
        )

    def after_scenario(self, scenario: str, check: BaselineCheck) -> None:
        if check.restored:
            self.broken_by, self.broken = None, ()
        else:
            self.broken_by, self.broken = scenario, check.differences
