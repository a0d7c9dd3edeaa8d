"""A platform call with a bound: a fault's inject or revert that never returns must not
hang the run.

Backends bound their own calls (HTTP timeouts, operation timeouts); this is the
backstop for a call that blocks anyway (a hung API server that accepted the
connection, a process that stopped answering). The call runs in a daemon thread and
the caller waits for it at most ``timeout_s``; past that, ``CallTimeout`` is raised
and the run goes on (to the revert, to the next scenario). The thread cannot be
killed: a call that finishes later does so unobserved, which is why a timed-out
revert stays ``revert-failed`` in the journal for ``ledgerdrill cleanup``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ledgerdrill.errors import FaultError

T = TypeVar("T")


class CallTimeout(FaultError):
    """A fault's platform call did not return within its bound."""


def bounded(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """``call()``'s result, or its exception; ``CallTimeout`` after ``timeout_s``."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the caller, whatever it is
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"bounded-{what[:40]}", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    # wait in short slices: the main thread stays responsive to (deferred) signals
    while not done.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            raise CallTimeout(f"{what} did not return within {timeout_s:g} s")
    if failure:
        raise failure[0]
    return outcome[0]
