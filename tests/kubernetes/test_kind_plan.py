"""``ledgerdrill plan --target targets/kind.yaml`` as a user runs it (the real CLI in a
subprocess), against the two fake clusters behind a kubeconfig whose contexts are named
like kind's: ``kind-ledgerdrill`` and ``kind-ledgerdrill-dr``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import FakeClusters, fake_clusters

REPO = Path(__file__).parents[2]
LEDGERDRILL = Path(sys.executable).parent / "ledgerdrill"
SCENARIOS = [
    "cache-loss", "certificate[expired]", "certificate[removed]", "database-failover[crash]",
    "database-failover[switchover]", "database-corruption-and-point-in-time-restore",
    "node-crash", "node-freeze", "region-outage", "bad-release", "zone-outage",
]  # fmt: skip


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[FakeClusters]:
    with fake_clusters(tmp_path) as found:
        yield found


def plan(kubeconfig: Path, target: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        [str(LEDGERDRILL), "plan", "--target", str(target),
         "--reports-dir", str(tmp_path / "reports")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_plan_shows_nodes_per_zone_and_what_each_scenario_would_do(
    clusters: FakeClusters, tmp_path: Path
) -> None:
    done = plan(clusters.kubeconfig, Path("targets/kind.yaml"), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = done.stdout
    assert (
        "  region primary — zone zone-a: ledgerdrill-worker, ledgerdrill-worker2; "
        "zone zone-b: ledgerdrill-worker3, ledgerdrill-worker4; "
        "zone zone-c: ledgerdrill-worker5, ledgerdrill-worker6" in out
    )
    assert "  region dr — zone zone-a: ledgerdrill-dr-worker, ledgerdrill-dr-worker2;" in out
    assert "never touched: ledgerdrill-control-plane" in out
    assert "DR context kind-ledgerdrill-dr" in out
    for scenario in SCENARIOS:
        assert f"  {scenario} [" in out, f"{scenario} missing from the plan"
    for action in (
        "would crash node ledgerdrill-worker3 (kill everything on it) → node "
        "ledgerdrill-worker3 (zone zone-b)",
        "would freeze node ledgerdrill-worker4",
        "would take zone zone-c down (crash ledgerdrill-worker5, ledgerdrill-worker6)",
        "would crash the database primary (ledgerdrill-db-1)",
        "would take region primary down: kind-ledgerdrill: scale deployment "
        "ledgerdrill/ledgerdrill-erp 3→0; kind-ledgerdrill: scale deployment ledgerdrill/redis "
        "1→0; kind-ledgerdrill: hibernate CNPG cluster ledgerdrill/ledgerdrill-db",
        "would (runbook step, once approved) fail over to region dr",
        "would roll out release 2.0.0-bad to every replica",
        "would serve an expired certificate on entry",
    ):
        assert action in out, action
    assert "promote CNPG replica cluster ledgerdrill-db (spec.replica.enabled=false" in out
    assert "REFUSED" not in out
    # a plan reads, never writes, on either cluster
    for fake in (clusters.primary, clusters.dr):
        assert fake.requests and {method for method, _, _ in fake.requests} == {"GET"}


def _variant(tmp_path: Path, **platform: str) -> Path:
    target = yaml.safe_load((REPO / "targets/kind.yaml").read_text())
    target["platform"].update(platform)
    target["probes"]["catalogue"] = str(REPO / "probes/kind.yaml")
    path = tmp_path / "kind-variant.yaml"
    path.write_text(yaml.safe_dump(target))
    return path


def _with_context(kubeconfig: Path, name: str) -> Path:
    """The same kubeconfig plus a context ``name`` pointing at the primary fake."""
    config = yaml.safe_load(kubeconfig.read_text())
    config["contexts"].append(
        {"name": name, "context": {"cluster": "kind-ledgerdrill", "user": "kind-ledgerdrill"}}
    )
    path = kubeconfig.with_name("kubeconfig-prod")
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("field", ["context", "dr_context"])
def test_a_context_outside_the_allowlist_is_refused_in_one_line(
    clusters: FakeClusters, tmp_path: Path, field: str
) -> None:
    kubeconfig = _with_context(clusters.kubeconfig, "aks-prod")
    target = _variant(tmp_path, **{field: "aks-prod"})
    done = plan(kubeconfig, target, tmp_path)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0] == (
        f"ledgerdrill: refused: {target}: kube context 'aks-prod' is not allowed "
        "(platform.allowed_contexts: kind-*); add it to the target file to drill it"
    )
    # refused before any request reached either cluster
    assert clusters.primary.requests == [] and clusters.dr.requests == []
