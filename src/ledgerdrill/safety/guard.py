"""Allowlists and blast radius: checked before anything is touched.

A fault lists what it acts on (``Fault.targets()``). The guard refuses, with every
reason at once, when a target is not on the target file's allowlist, when the
fault would take more nodes, zones or regions than the blast radius allows, when
it would touch a protected node (a control plane), when a production target
was not confirmed by name, or when a blackout window of the target's business
calendar (a month-end close) is in effect and was not overridden by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Protocol

from ledgerdrill.errors import SafetyViolation
from ledgerdrill.faults.base import TargetRef
from ledgerdrill.platforms.base import NodeControl, Platform
from ledgerdrill.safety.calendar import ActiveBlackout, Calendar
from ledgerdrill.target_kinds import ALLOWLIST_FIELD
from ledgerdrill.targets import AllowList, Target
from ledgerdrill.timeline import Clock, SystemClock


class Action(Protocol):
    """What the guard checks: a fault, or a runbook step (``runbook.RunbookAction``)."""

    @property
    def kind(self) -> str: ...
    def describe(self) -> str: ...
    def targets(self) -> Sequence[TargetRef]: ...


class SafetyGuard:
    def __init__(
        self,
        target: Target,
        platform: Platform,
        *,
        confirm_production: str | None = None,
        override_blackout: Sequence[str] = (),
        clock: Clock | None = None,
    ) -> None:
        self.target = target
        self.platform = platform
        self.confirm_production = confirm_production
        self.override_blackout = frozenset(override_blackout)
        # the calendar asks this clock for the wall time: tests give a fixed date
        self.clock: Clock = clock or SystemClock()
        settings = target.safety.calendar
        self.calendar = Calendar(settings) if settings is not None else None

    def problems(self, fault: Action) -> list[str]:
        """Every reason ``fault`` (or a runbook step) must not run; empty when it may."""
        try:
            refs = list(fault.targets())
        except Exception as exc:  # a fault that cannot name its targets is refused
            return [f"cannot resolve what {fault.kind} would touch: {exc}"]
        out = self._environment_problems() + self.calendar_problems()
        out += [p for ref in refs if (p := self._allowlist_problem(ref))]
        out += self._blast_radius_problems(refs)
        out += self._protected_problems(refs)
        return out

    def problems_beyond_targets(self) -> list[str]:
        """What refuses any fault on this target, whatever it acts on (environment and
        business calendar): the plan's check when a fault's targets cannot be read yet."""
        return self._environment_problems() + self.calendar_problems()

    def step_problems(self, step: Action) -> list[str]:
        """A runbook step is the recovery of a fault this guard allowed, and runs only
        once approved (the approval is its explicit consent): the target's environment
        and business calendar apply to it, the allowlists and blast radius (written for
        faults) do not. Its targets are shown in the plan and journaled."""
        return self.problems_beyond_targets()

    def check_step(self, step: Action) -> None:
        found = self.step_problems(step)
        if found:
            raise SafetyViolation(
                f"refused runbook step {step.describe()} on target {self.target.name}: "
                + "; ".join(found)
            )

    def check(self, fault: Action) -> None:
        found = self.problems(fault)
        if found:
            raise SafetyViolation(
                f"refused {fault.describe()} on target {self.target.name}: " + "; ".join(found)
            )

    def _environment_problems(self) -> list[str]:
        if self.target.environment != "production":
            return []
        if self.confirm_production == self.target.name:
            return []
        return [
            f"{self.target.name} is a production target: confirm with "
            f"--confirm-production={self.target.name}"
        ]

    def blackouts(self) -> tuple[list[ActiveBlackout], list[ActiveBlackout]]:
        """Windows in effect now: (those that refuse, those overridden by name)."""
        if self.calendar is None:
            return [], []
        active = self.calendar.active(self.clock.now().wall)
        overridden = [w for w in active if w.name in self.override_blackout]
        return [w for w in active if w.name not in self.override_blackout], overridden

    def calendar_problems(self) -> list[str]:
        refusing, _ = self.blackouts()
        return [f"{w.describe()}: override with --override-blackout={w.name}" for w in refusing]

    def check_calendar(self) -> list[ActiveBlackout]:
        """Refuse (``SafetyViolation``) inside a window; return the overridden ones."""
        found = self.calendar_problems()
        if found:
            raise SafetyViolation(f"refused on target {self.target.name}: " + "; ".join(found))
        return self.blackouts()[1]

    def _allowlist_problem(self, ref: TargetRef) -> str | None:
        allow: AllowList = self.target.safety.allow
        field = ALLOWLIST_FIELD.get(ref.kind)
        if field is None:
            return f"unknown kind of target {ref.kind!r}"
        patterns: list[str] = getattr(allow, field)
        if any(fnmatchcase(ref.name, pattern) for pattern in patterns):
            return None
        shown = ", ".join(patterns) if patterns else "nothing"
        return f"{ref} is not allowed (safety.allow.{field}: {shown})"

    def _blast_radius_problems(self, refs: Sequence[TargetRef]) -> list[str]:
        radius = self.target.safety.blast_radius
        regions = {r.name for r in refs if r.kind == "region"}
        # a whole-region fault is capped by max_regions; node and zone caps are for the
        # node- and zone-level faults, so the region's own nodes don't count against them
        in_scope = [r for r in refs if r.region is None or r.region not in regions]
        nodes = {r.name for r in in_scope if r.kind == "node"}
        zones = {r.zone for r in in_scope if r.kind == "node" and r.zone} | {
            r.name for r in in_scope if r.kind == "zone"
        }
        out = []
        if len(nodes) > radius.max_nodes:
            out.append(f"{len(nodes)} nodes > safety.blast_radius.max_nodes {radius.max_nodes}")
        if len(zones) > radius.max_zones:
            out.append(f"{len(zones)} zones > safety.blast_radius.max_zones {radius.max_zones}")
        if len(regions) > radius.max_regions:
            out.append(
                f"{len(regions)} regions > safety.blast_radius.max_regions {radius.max_regions}"
            )
        total = self._node_count()
        if nodes and total:
            share = len(nodes) / total
            if share > radius.max_node_share:
                out.append(
                    f"{len(nodes)} of {total} nodes ({share:.0%}) > "
                    f"safety.blast_radius.max_node_share {radius.max_node_share:.0%}"
                )
        return out

    def _protected_problems(self, refs: Sequence[TargetRef]) -> list[str]:
        if not self.platform.supports(NodeControl):
            return []
        protected = {n.name for n in self.platform.capability(NodeControl).nodes() if n.protected}
        return [
            f"node {r.name} is protected (control plane) and is never touched"
            for r in refs
            if r.kind == "node" and r.name in protected
        ]

    def _node_count(self) -> int:
        if not self.platform.supports(NodeControl):
            return 0
        return len(self.platform.capability(NodeControl).nodes())
