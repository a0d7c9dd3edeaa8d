"""A game day brings up the platform the harness runs itself (the sandbox) when it is not
running, and takes down only what it started (``platforms.registry.bring_up_for_run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.platforms import registry
from ledgerdrill.platforms.sandbox import control
from ledgerdrill.targets import load_target

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {"up": [], "down": [], "status": None}
    monkeypatch.setattr(control, "read_status", lambda _state: seen["status"])
    monkeypatch.setattr(control, "up", lambda state, _settings, progress: seen["up"].append(state))
    monkeypatch.setattr(control, "down", lambda state: seen["down"].append(state) or [])
    return seen


def test_a_stopped_sandbox_is_started_and_taken_down_by_the_run(calls: dict[str, Any]) -> None:
    said: list[str] = []
    target = load_target(REPO / "targets" / "sandbox.yaml")
    take_down = registry.bring_up_for_run(target, say=said.append)
    assert take_down is not None and len(calls["up"]) == 1 and calls["down"] == []
    take_down()
    assert calls["down"] == calls["up"]
    assert any("starting the sandbox" in line for line in said)
    assert said[-1] == "ledgerdrill: taking the sandbox down (it was started for this run)"


def test_a_running_sandbox_is_left_as_it_is(calls: dict[str, Any]) -> None:
    calls["status"] = {"phase": "ready"}
    target = load_target(REPO / "targets" / "sandbox.yaml")
    assert registry.bring_up_for_run(target, say=lambda _line: None) is None
    assert calls["up"] == [] and calls["down"] == []


def test_a_platform_the_harness_does_not_run_is_never_started(
    calls: dict[str, Any], fake_target: Any
) -> None:
    target = load_target(fake_target())
    assert registry.bring_up_for_run(target, say=lambda _line: None) is None
    assert calls["up"] == []
