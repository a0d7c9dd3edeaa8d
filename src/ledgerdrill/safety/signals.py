"""Signals as exceptions, so every ``with Injection(...)`` reverts on SIGINT and SIGTERM.

SIGINT already raises ``KeyboardInterrupt``. SIGTERM (a CI runner cancelling a job,
``kill``) would end the process at once and leave a fault behind; here it raises
``Terminated``, a ``KeyboardInterrupt`` subclass, so pytest stops the session the
same way and every ``finally`` runs. While a revert runs, both signals are
deferred: a second Ctrl-C must not cut a rollback in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"received {signal.Signals(signum).name}")


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install_termination_handler() -> Callable[[], None]:
    """Make SIGTERM raise ``Terminated`` and SIGINT ``KeyboardInterrupt`` in the main
    thread, whatever the process inherited; return the undo.

    SIGINT explicitly: a shell starts a background job (``make gameday &``, ``nohup``)
    with SIGINT *ignored*, and Python then leaves it ignored -- a drill started that way
    would drill on through Ctrl-C or a CI runner's SIGINT, its fault in place."""
    if not in_main_thread():
        return lambda: None
    previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)

    return restore


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then act on the first one received."""
    if not in_main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, remember) for sig in _HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signum = received[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt
            else:
                raise Terminated(f"received {signal.Signals(signum).name}")
