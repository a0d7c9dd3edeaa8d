"""Network faults on one link between two parts of the platform (``NetworkControl``):
``network-latency``, ``network-loss``, ``network-partition``.

Each proves it took effect by round trips through the link to the server behind it, timed
by the client (``measure_link``), against the same measurement before the fault: the
link's own word is not evidence. Each revert puts back the link's state as it was found
and proves it by reading the state back and by a round trip getting through again (when
it got through before); a revert that cannot is a ``FaultError``, said out loud.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from ledgerdrill.errors import FaultError, PlatformError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import (
    DatabaseControl,
    LinkMeasurement,
    LinkState,
    NetworkControl,
    Platform,
)
from ledgerdrill.target_kinds import TargetKind

BASELINE_ROUND_TRIPS = 5
# a "lost" segment waits one retransmission timeout: Linux's minimum, 200 ms
RETRANSMIT_MS = 200.0
# how unlikely a loss fault may be to go unseen by its round trips (see NetworkLoss)
MISS_PROBABILITY = 0.001
# database roles a link's end may name instead of a member (``DatabaseTopology``)
ROLES = ("primary", "sync-standby", "async-replica")


def _median(measured: LinkMeasurement) -> float | None:
    return statistics.median(measured.round_trips_ms) if measured.round_trips_ms else None


class _LinkFault(Fault):
    """What the three share: the link named, its state read before, the put-back.

    A link's ends may be database roles instead of names (``sync-standby>primary``: the
    synchronous standby's WAL stream from the primary): they are read when the fault is
    prepared, as the primary a failover drill acts on is, since an earlier drill may have
    moved the roles."""

    capability = NetworkControl

    def __init__(self, platform: Platform, link: str) -> None:
        super().__init__(platform)
        self.link = link
        self.control = platform.capability(NetworkControl)
        self.before: LinkState | None = None
        self.baseline_ms: float | None = None
        self.resolved: str | None = None  # the link's name once its roles are read
        if any(end in ROLES for end in link.split(">", 1)):
            self.chosen_when_run = f"the members in those roles at that moment ({link})"

    def link_name(self) -> str:
        """The link acted on: ``link`` with its role ends read from the database now."""
        if self.resolved is not None:
            return self.resolved
        ends = self.link.split(">", 1)
        if not any(end in ROLES for end in ends):
            return self.link
        topology = self.platform.capability(DatabaseControl).database_topology()
        by_role = {m.role: m.name for m in topology.members}
        missing = [end for end in ends if end in ROLES and end not in by_role]
        if missing:
            raise FaultError(f"link {self.link}: no database member is {', '.join(missing)}")
        return ">".join(by_role.get(end, end) for end in ends)

    def prepare(self) -> None:
        name = self.resolved = self.link_name()
        if name not in self.control.links():
            known = ", ".join(self.control.links()) or "none"
            raise FaultError(f"no link {name!r} on this platform (links: {known})")
        self.before = self.control.link_state(name)
        self.baseline_ms = _median(self.control.measure_link(name, BASELINE_ROUND_TRIPS))

    def undo_state(self) -> JSONParams:
        return {
            "resolved": self.resolved,
            "before": asdict(self.before) if self.before else None,
            "baseline_ms": self.baseline_ms,
        }

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        resolved = state.get("resolved")
        self.resolved = str(resolved) if resolved else None
        before = state.get("before")
        self.before = LinkState(**before) if isinstance(before, dict) else None
        baseline = state.get("baseline_ms")
        self.baseline_ms = float(baseline) if isinstance(baseline, int | float) else None

    def targets(self) -> Sequence[TargetRef]:
        return [TargetRef(TargetKind.LINK, self.link_name())]

    def _named(self) -> str:
        """For ``describe``: the link's name, or its roles while they cannot be read."""
        try:
            return self.link_name()
        except (PlatformError, FaultError):
            return self.link

    def shaped(self, base: LinkState) -> LinkState:
        raise NotImplementedError

    def inject(self) -> None:
        base = self.before or self.control.link_state(self.link_name())
        self.control.set_link(self.shaped(base))

    def revert(self) -> None:
        name = self.link_name()
        before = self.before or LinkState(name)  # no record: a clean link
        self.control.set_link(before)
        now = self.control.link_state(name)
        if now != before:
            raise FaultError(f"link {name} not restored: {now} (was {before})")
        if not before.cut:
            after = self.control.measure_link(name, 1)
            if not after.round_trips_ms:
                raise FaultError(f"link {name} restored to {before} but nothing gets through it")


@register_fault
class NetworkLatency(_LinkFault):
    kind = "network-latency"

    def __init__(
        self, platform: Platform, link: str, latency_ms: float = 20.0, jitter_ms: float = 0.0
    ) -> None:
        super().__init__(platform, link)
        self.latency_ms = float(latency_ms)
        self.jitter_ms = float(jitter_ms)

    def describe(self) -> str:
        jitter = f" (+0-{self.jitter_ms:g} ms jitter)" if self.jitter_ms else ""
        return f"add {self.latency_ms:g} ms each way{jitter} on link {self._named()}"

    def params(self) -> JSONParams:
        return {"link": self.link, "latency_ms": self.latency_ms, "jitter_ms": self.jitter_ms}

    def shaped(self, base: LinkState) -> LinkState:
        return replace(base, latency_ms=base.latency_ms + self.latency_ms,
                       jitter_ms=base.jitter_ms + self.jitter_ms)  # fmt: skip

    def verify(self) -> Evidence:
        measured = self.control.measure_link(self.link_name(), BASELINE_ROUND_TRIPS)
        median = _median(measured)
        added = 2 * self.latency_ms  # a round trip crosses the link twice
        if median is None:
            raise FaultError(f"nothing got through link {self._named()} to measure the latency")
        base = self.baseline_ms or 0.0
        if median - base < 0.8 * added:
            raise FaultError(
                f"round trips through {self._named()} take {median:.1f} ms (before {base:.1f} ms):"
                f" not the {added:g} ms more the fault adds"
            )
        return Evidence(
            f"round trips through {self._named()}: {median:.1f} ms median, {base:.1f} ms before",
            {"round_trip_ms": median, "baseline_ms": base},
        )


@register_fault
class NetworkLoss(_LinkFault):
    kind = "network-loss"

    def __init__(self, platform: Platform, link: str, loss_percent: float = 5.0) -> None:
        super().__init__(platform, link)
        if not 0 < loss_percent <= 100:
            raise FaultError(f"loss_percent {loss_percent}: a share above 0 and at most 100")
        self.loss_percent = float(loss_percent)

    def describe(self) -> str:
        return (
            f"lose {self.loss_percent:g}% of segments on link {self._named()} (each costs a"
            f" {RETRANSMIT_MS:g} ms retransmission)"
        )

    def params(self) -> JSONParams:
        return {"link": self.link, "loss_percent": self.loss_percent}

    def shaped(self, base: LinkState) -> LinkState:
        return replace(base, loss_percent=self.loss_percent)

    def round_trips_needed(self) -> int:
        """Enough round trips (two segments each) that none of them being lost has a
        chance below ``MISS_PROBABILITY``."""
        kept = 1 - self.loss_percent / 100
        if kept <= 0:
            return 1
        return max(1, math.ceil(math.log(MISS_PROBABILITY) / (2 * math.log(kept))))

    def verify(self) -> Evidence:
        count = self.round_trips_needed()
        measured = self.control.measure_link(self.link_name(), count)
        late = [t for t in measured.round_trips_ms if t >= 0.9 * RETRANSMIT_MS]
        if not late:
            raise FaultError(
                f"none of {len(measured.round_trips_ms)} round trips through {self._named()} waited"
                f" for a retransmission ({self.loss_percent:g}% loss should show in"
                f" {count})"
            )
        return Evidence(
            f"{len(late)} of {len(measured.round_trips_ms)} round trips through {self._named()}"
            f" waited for a retransmission",
            {"late": float(len(late)), "round_trips": float(len(measured.round_trips_ms))},
        )


@register_fault
class NetworkPartition(_LinkFault):
    kind = "network-partition"

    def describe(self) -> str:
        return f"cut link {self._named()} (nothing gets through, either way)"

    def params(self) -> JSONParams:
        return {"link": self.link}

    def shaped(self, base: LinkState) -> LinkState:
        return replace(base, cut=True)

    def verify(self) -> Evidence:
        measured = self.control.measure_link(self.link_name(), 3)
        if measured.round_trips_ms:
            raise FaultError(
                f"link {self._named()} is meant to be cut, but {len(measured.round_trips_ms)} of"
                f" {measured.attempts} round trips got through"
            )
        return Evidence(
            f"nothing gets through {self._named()}: {measured.refused} of {measured.attempts}"
            " connections refused"
        )
