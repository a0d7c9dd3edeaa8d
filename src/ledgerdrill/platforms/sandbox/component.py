"""What the sandbox daemon starts, supervises and stops, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ledgerdrill.platforms.sandbox.services import Service


class Component(Protocol):
    """One part of the sandbox (the database cluster, Redis, the ERP replicas, Traefik).

    ``start`` blocks until the part is ready or raises ``PlatformError``; ``stop`` is
    idempotent and leaves no process behind; ``services`` are the programs the
    supervisor keeps alive afterwards; ``status`` is what ``sandbox status`` shows.
    """

    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def services(self) -> list[Service]: ...
    def status(self) -> dict[str, Any]: ...


# hooks the assembly hands to the supervisor: service name -> how to bring it back
RestoreHook = Callable[[Service], None]
