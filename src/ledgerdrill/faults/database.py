"""Database faults: primary failover (crash or planned switchover) and corruption.

``DatabaseCorruption`` is the classic failed month-end deployment: a bad change
deletes or alters posted entries. Its recovery -- and so its revert -- is a
point-in-time restore to just before the change into a new server, and switching
the application to it (the runbook step ``runbook.PointInTimeRestore``, which a
scenario runs as ``drill.runbook(fault.recovery())``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerdrill.errors import FaultError, PlatformError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import DatabaseControl, Platform
from ledgerdrill.runbook.steps import PointInTimeRestore
from ledgerdrill.target_kinds import TargetKind


@register_fault
class DatabaseFailover(Fault):
    """Lose the primary: ``crash`` kills it, ``switchover`` hands over cleanly.
    Revert brings the old primary back as a standby (the new primary stays)."""

    kind = "database-failover"
    capability = DatabaseControl
    MODES = ("crash", "switchover")
    # the revert leaves the new primary in place, so a later failover drill acts on it
    chosen_when_run = "the database primary at that moment"

    def __init__(self, platform: Platform, mode: str = "crash") -> None:
        super().__init__(platform)
        if mode not in self.MODES:
            raise FaultError(f"database-failover mode {mode!r} (allowed: {', '.join(self.MODES)})")
        self.mode = mode
        self.db = platform.capability(DatabaseControl)
        self.old_primary: str | None = None

    def prepare(self) -> None:
        primary = self.db.database_topology().primary
        if primary is None:
            raise FaultError("no database primary to fail over")
        self.old_primary = primary.name

    def undo_state(self) -> JSONParams:
        return {"old_primary": self.old_primary}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        self.old_primary = state.get("old_primary")

    def describe(self) -> str:
        verb = "crash the database primary" if self.mode == "crash" else "switch the primary over"
        try:
            who = self._primary_name()
        except PlatformError:  # a plan made while the platform is down says so in targets
            who = "whichever member is primary then"
        return f"{verb} ({who})"

    def _primary_name(self) -> str:
        if self.old_primary:
            return self.old_primary
        primary = self.db.database_topology().primary
        return primary.name if primary else "no primary"

    def targets(self) -> Sequence[TargetRef]:
        topo = self.db.database_topology()
        name = self._primary_name()
        member = next((m for m in topo.members if m.name == name), None)
        return [TargetRef(TargetKind.DATABASE, name, zone=None, region=None)] + (
            [TargetRef(TargetKind.NODE, member.node)] if member and self.mode == "crash" else []
        )

    def params(self) -> JSONParams:
        return {"mode": self.mode}

    def inject(self) -> None:
        if self.mode == "crash":
            self.db.crash_primary()
        else:
            self.db.switchover()

    def verify(self) -> Evidence:
        topo = self.db.database_topology()
        old = next((m for m in topo.members if m.name == self.old_primary), None)
        if old is not None and old.role == "primary":
            raise FaultError(f"{self.old_primary} is still the primary after the {self.mode}")
        return Evidence(
            f"{self.old_primary} is no longer primary ({old.role if old else 'gone'})",
            {m.name: m.role for m in topo.members},
        )

    def revert(self) -> None:
        if self.old_primary is None:
            return
        primary = self.db.database_topology().primary
        if primary is not None and primary.name == self.old_primary:
            return  # it never stopped being primary: nothing to rejoin
        self.db.rejoin(self.old_primary)


@register_fault
class DatabaseCorruption(Fault):
    """Run a damaging statement on the primary. Revert = point-in-time restore to the
    instant before it, into a new server, and switch the application there."""

    kind = "database-corruption"
    capability = DatabaseControl
    chosen_when_run = "the database primary at that moment"

    def __init__(self, platform: Platform, sql: str, description: str = "") -> None:
        super().__init__(platform)
        self.sql = sql
        self.description = description or "a bad change"
        self.db = platform.capability(DatabaseControl)
        self.restore_point: str | None = None
        self.rows_affected: int | None = None
        self.restored_to: str | None = None

    def prepare(self) -> None:
        self.restore_point = self.db.database_time_iso()

    def undo_state(self) -> JSONParams:
        return {"restore_point": self.restore_point}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        self.restore_point = state.get("restore_point")

    def describe(self) -> str:
        return f"corrupt the ledger: {self.description}"

    def targets(self) -> Sequence[TargetRef]:
        primary = self.db.database_topology().primary
        return [TargetRef(TargetKind.DATABASE, primary.name if primary else "primary")]

    def params(self) -> JSONParams:
        return {"sql": self.sql, "description": self.description}

    def inject(self) -> None:
        self.rows_affected = self.db.run_bad_change(self.sql)

    def verify(self) -> Evidence:
        if not self.rows_affected:
            raise FaultError(f"the bad change touched no rows: {self.sql}")
        return Evidence(f"{self.rows_affected} rows changed by {self.description}")

    def recovery(self) -> PointInTimeRestore:
        step = PointInTimeRestore(self.platform)
        step.resolves = self
        return step

    def revert(self) -> None:
        """The same restore as the runbook step (idempotent per restore point on every
        backend: a restore an interrupted step already made is reused, not repeated)."""
        if self.restored_to is not None:
            return
        if self.restore_point is None:
            raise FaultError("no restore point was recorded before the bad change")
        step = PointInTimeRestore(self.platform, self.restore_point)
        step.run()
        self.restored_to = step.server
