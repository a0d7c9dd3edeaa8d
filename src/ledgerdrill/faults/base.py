"""The Fault interface and the registry ``ledgerdrill cleanup`` rebuilds faults from.

A fault's life: ``prepare()`` reads what the undo needs (touching nothing) ->
its ``undo_record()`` is journaled -> ``inject()`` -> ``verify()`` gives independent
evidence the fault really took effect -> ``revert()`` (idempotent, always).
After a SIGKILL, ``cleanup`` finds the journaled record and calls
``fault_from_record(platform, record).revert()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ledgerdrill.kinds import KindRegistry
from ledgerdrill.platforms.base import Platform
from ledgerdrill.target_kinds import TargetKind

if TYPE_CHECKING:
    from ledgerdrill.runbook.base import RunbookAction

JSONParams = dict[str, Any]


@dataclass(frozen=True)
class TargetRef:
    """Something a fault acts on, for allowlists, blast radius and the plan."""

    kind: TargetKind
    name: str
    zone: str | None = None
    region: str | None = None

    def __str__(self) -> str:
        where = f" (zone {self.zone})" if self.zone and self.kind != "zone" else ""
        return f"{self.kind} {self.name}{where}"


@dataclass(frozen=True)
class Evidence:
    """Independent proof that a fault took effect (the process is gone, the node is NotReady)."""

    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


class Fault(ABC):
    kind: ClassVar[str]
    # the capability protocol this fault needs; the scenario skips when it is missing
    capability: ClassVar[type]
    disruptive: ClassVar[bool] = True
    # what the fault acts on is chosen when it runs, by role, not by name (e.g. "the
    # database primary"): an earlier scenario may have moved the role since the plan
    # was made, and the plan says so rather than promise a name
    chosen_when_run: str = ""  # a fault may set its own when its targets are roles

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    @abstractmethod
    def describe(self) -> str:
        """One line for people: what will be done, to what."""

    @abstractmethod
    def targets(self) -> Sequence[TargetRef]: ...

    @abstractmethod
    def params(self) -> JSONParams:
        """What identifies this fault (enough to rebuild it with ``from_record``)."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Read (never change) whatever the undo will need, before the journal write."""

    def undo_state(self) -> JSONParams:
        """Extra state the revert needs that only ``prepare`` can know (e.g. the original
        certificate's reference)."""
        return {}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:  # noqa: B027
        """Take back what ``undo_state`` gave, when rebuilt from a journal record."""

    @abstractmethod
    def inject(self) -> None: ...

    @abstractmethod
    def verify(self) -> Evidence:
        """Check from outside that the fault is in effect; ``FaultError`` if it is not."""

    @abstractmethod
    def revert(self) -> None:
        """Undo the fault. Idempotent: reverting twice, or an un-injected fault, is fine."""

    def recovery(self) -> RunbookAction | None:
        """The runbook step that recovers from this fault (a restore, a rollback), when
        people recover from it by hand: once that step completes, the fault counts as
        reverted. ``None``: the platform heals itself, or the revert is the recovery."""
        return None

    def undo_record(self) -> JSONParams:
        return {"fault": self.kind, "params": self.params(), "undo": self.undo_state()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


FAULTS: KindRegistry[Fault] = KindRegistry("fault", "fault")
F = TypeVar("F", bound=type[Fault])


def register_fault(cls: F) -> F:
    """Class decorator: lets ``cleanup`` rebuild this fault from a journal record."""
    return FAULTS.register(cls)


def registered_faults() -> list[str]:
    return FAULTS.kinds()


def fault_from_record(platform: Platform, record: Mapping[str, Any]) -> Fault:
    return FAULTS.rebuild(platform, record)
