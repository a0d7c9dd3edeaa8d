"""Actions by kind, rebuilt from journal records: one mechanism for faults and runbook
steps. A record is ``{<field>: kind, "params": {...}, "undo": {...}}``; ``cleanup``
rebuilds the action from it in a process that never saw the original object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from ledgerdrill.errors import ConfigError
from ledgerdrill.platforms.base import Platform


class Rebuildable(Protocol):
    def restore_undo_state(self, state: Mapping[str, Any]) -> None: ...


T = TypeVar("T", bound=Rebuildable)
C = TypeVar("C", bound=type)


class KindRegistry(Generic[T]):
    def __init__(self, field: str, what: str) -> None:
        self.field = field  # the record's key naming the kind: "fault" | "runbook"
        self.what = what  # for error messages: "fault" | "runbook step"
        self._factories: dict[str, Callable[[Platform, dict[str, Any]], T]] = {}

    def register(self, cls: C) -> C:
        """Class decorator: ``cls(platform, **params)`` rebuilds an action of its kind."""
        kind = str(cls.kind)  # type: ignore[attr-defined]
        if kind in self._factories:
            raise RuntimeError(f"{self.what} kind {kind!r} registered twice")
        self._factories[kind] = lambda platform, params: cls(platform, **params)
        return cls

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def rebuild(self, platform: Platform, record: Mapping[str, Any]) -> T:
        kind = str(record.get(self.field))
        factory = self._factories.get(kind)
        if factory is None:
            known = ", ".join(self.kinds())
            raise ConfigError(
                f"journal record names an unknown {self.what} {kind!r} (known: {known})"
            )
        action = factory(platform, dict(record.get("params") or {}))
        action.restore_undo_state(record.get("undo") or {})
        return action
