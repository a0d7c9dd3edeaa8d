"""Against a real kind cluster (`make kind-up`): skipped here unless the current kube
context is a reachable kind cluster. ``--require-platform kind`` (or ``kubernetes``), or
``LEDGERDRILL_REQUIRE_KIND=1``, turns the skip into a failure: a CI job that set up kind
must not pass by skipping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerdrill.platforms.base import NodeState

REPO = Path(__file__).resolve().parents[2]


def _kind_required(config: pytest.Config) -> str | None:
    wanted = config.getoption("ledgerdrill_require_platform") or config.getini(
        "ledgerdrill_require_platform"
    )
    if wanted in ("kind", "kubernetes"):
        return f"--require-platform {wanted}"
    if os.environ.get("LEDGERDRILL_REQUIRE_KIND") == "1":
        return "LEDGERDRILL_REQUIRE_KIND=1"
    return None


@pytest.fixture(scope="module")
def kind_context(request: pytest.FixtureRequest) -> str:
    reason = ""
    try:
        from kubernetes import client, config

        _, current = config.list_kube_config_contexts()
        name = str(current["name"])
        if not name.startswith("kind-"):
            reason = f"current kube context {name!r} is not a kind cluster"
        else:
            api = config.new_client_from_config(context=name)
            client.VersionApi(api).get_code(_request_timeout=3)
            return name
    except Exception as exc:  # no kubeconfig, no cluster, no docker: all mean "not here"
        reason = reason or f"no kind cluster reachable: {exc}"
    required = _kind_required(request.config)
    if required:
        pytest.fail(f"{required} but {reason}", pytrace=False)
    print(f"skipping kind tests: {reason}")
    pytest.skip(reason)


@pytest.mark.kind
def test_kind_nodes_are_spread_over_three_zones(kind_context: str) -> None:
    from ledgerdrill.platforms.registry import build_platform
    from ledgerdrill.targets import load_target

    target = load_target(REPO / "targets" / "kind.yaml")
    platform = build_platform(target)
    try:
        assert len(platform.zones()) == 3  # type: ignore[attr-defined]
        assert all(n.state is NodeState.RUNNING for n in platform.nodes())  # type: ignore[attr-defined]
    finally:
        platform.close()


@pytest.mark.kind
def test_the_scenario_suite_passes_on_kind(kind_context: str, tmp_path: Path) -> None:
    """The same game day as on the sandbox, on the kind clusters: every scenario the
    backend can run PASSes, and nothing is left in the fault journal."""
    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "gameday",
         "--target", str(REPO / "targets" / "kind.yaml"),
         "--reports-dir", str(tmp_path / "reports")],
        cwd=REPO, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    out = done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    verdicts = {s["id"]: s["verdict"] for s in report["scenarios"]}
    assert verdicts, out
    assert set(verdicts.values()) <= {"PASS"}, (verdicts, out)
    assert done.returncode == 0, out
    cleanup = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", "cleanup"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert cleanup.returncode == 0 and "nothing to clean up" in cleanup.stdout, cleanup
