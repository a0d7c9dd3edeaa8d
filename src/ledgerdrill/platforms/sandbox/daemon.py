"""The sandbox daemon: start every component in order, then supervise until SIGTERM.

Run by ``ledgerdrill sandbox up`` as ``python -m ledgerdrill.platforms.sandbox.daemon``. Its
status (``status.json``) says which step it is on, then ``ready`` with everything a
client needs; a failure to start stops whatever did start and reports ``failed``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType

from ledgerdrill.platform_events import EventLog
from ledgerdrill.platforms.sandbox.assembly import Assembly, assemble
from ledgerdrill.platforms.sandbox.component import Component
from ledgerdrill.platforms.sandbox.control import write_status
from ledgerdrill.targets import SandboxPlatformSettings

STATUS_REFRESH_S = 1.0


def run(state_dir: Path, settings: SandboxPlatformSettings) -> int:
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    events = EventLog(state_dir / "events.jsonl")
    started_at = time.monotonic()
    write_status(state_dir, {"phase": "starting", "step": "preparing"})
    assembly: Assembly | None = None
    started: list[Component] = []
    try:
        assembly = assemble(state_dir, settings, events)
        for component in assembly.components:
            if stop.is_set():
                raise InterruptedError("stopped while starting")
            step_started = time.monotonic()
            write_status(state_dir, {"phase": "starting", "step": f"starting {component.name}"})
            started.append(component)  # before start: a half-started part is stopped too
            component.start()
            events.append(
                "sandbox.started",
                component.name,
                {"seconds": round(time.monotonic() - step_started, 2)},
            )
        assembly.update_backends()
        assembly.supervisor.start()
        assembly.start_api()
        cold_start_s = round(time.monotonic() - started_at, 2)
        events.append("sandbox.ready", "sandbox", {"cold_start_s": cold_start_s})
        while not stop.is_set():
            write_status(state_dir, assembly.status("ready", cold_start_s=cold_start_s))
            stop.wait(STATUS_REFRESH_S)
        return 0
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        write_status(state_dir, {"phase": "failed", "error": detail})
        traceback.print_exc()
        return 1
    finally:
        if stop.is_set():
            write_status(state_dir, {"phase": "stopping"})
        if assembly is not None:
            assembly.supervisor.stop()
            if assembly.api is not None:
                assembly.api.stop()
        for component in reversed(started):
            try:
                component.stop()
            except Exception:  # stop the rest; the sweep in `down` catches stragglers
                traceback.print_exc()
        events.append("sandbox.stopped", "sandbox")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgerdrill.platforms.sandbox.daemon")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = SandboxPlatformSettings.model_validate_json(
        (args.state_dir / "settings.json").read_text()
    )
    return run(args.state_dir, settings)


if __name__ == "__main__":
    sys.exit(main())
