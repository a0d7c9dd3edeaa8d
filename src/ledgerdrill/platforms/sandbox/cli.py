"""The sandbox's own command line (``ledgerdrill sandbox up|down|status|verify``) and its
start-up for a game day: the only ways the rest of the harness reaches this backend
besides the platform registry."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from ledgerdrill.platforms.sandbox import control
from ledgerdrill.platforms.sandbox.status_view import public, render
from ledgerdrill.platforms.sandbox.witness import SandboxWitness
from ledgerdrill.targets import SandboxPlatformSettings, Target


def start_for_run(
    target: Target, settings: SandboxPlatformSettings, say: Callable[[str], None]
) -> Callable[[], None] | None:
    """Bring the sandbox up for a game day when it is not running; return how to take
    it down again if this run started it (None: it was running, it stays)."""
    state_dir = target.resolve_path(settings.state_dir)
    status = control.read_status(state_dir)
    if status is not None and status.get("phase") == "ready":
        return None
    say(f"ledgerdrill: starting the sandbox in {state_dir} ...")
    started = time.monotonic()
    control.up(state_dir, settings, progress=lambda step: say(f"  … {step}"))
    say(f"ledgerdrill: sandbox ready in {time.monotonic() - started:.1f}s")

    def take_down() -> None:
        say("ledgerdrill: taking the sandbox down (it was started for this run)")
        control.down(state_dir)

    return take_down


def sandbox_command(target_file: Path, action: str, *, as_json: bool) -> int:
    """``ledgerdrill sandbox <action>``; the exit code."""
    _, settings, state_dir = control.sandbox_target(target_file)
    if action == "down":
        stopped = control.down(state_dir)
        print(
            "sandbox down"
            + (f": stopped {', '.join(stopped)}" if stopped else " (was not running)")
        )
        return 0
    if action == "up":
        status = control.up(
            state_dir, settings, progress=lambda step: print(f"  … {step}", flush=True)
        )
    else:
        found = control.read_status(state_dir)
        if found is None:
            print("sandbox: not running (start it with `ledgerdrill sandbox up`)")
            return 1
        status = found
    if action == "verify":
        return _verify(state_dir)
    if as_json:
        print(json.dumps(public(status, show_secrets=True), indent=2, default=str))
    else:
        print(render(public(status, show_secrets=False)))
    return 0


def _verify(state_dir: Path) -> int:
    report = SandboxWitness(state_dir).check()
    for line in report.checked:
        print(f"  ok: {line}")
    for line in report.problems:
        print(f"  NOT OK: {line}")
    print("sandbox: healthy" if report.healthy else "sandbox: NOT healthy")
    return 0 if report.healthy else 1
