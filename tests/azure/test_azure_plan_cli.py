"""``ledgerdrill plan --target targets/aks-example.yaml`` as a user runs it, in a
subprocess, against the fake ARM and two fake Kubernetes API servers.

The fake ARM is injected by ``ledgerdrill_with_fake_arm.py`` (``clients.use_arm``): the
target file itself is the shipped example, unchanged; ``KUBECONFIG`` points at the fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aks_fakes import EXAMPLE, REPO, SUB, AksEstate, aks_estate, node_name

from ledgerdrill.testing.fake_arm import FakeArmServer

WITH_FAKE_ARM = Path(__file__).parent / "ledgerdrill_with_fake_arm.py"


@pytest.fixture
def estate(arm_server: FakeArmServer, tmp_path: Path) -> Iterator[AksEstate]:
    with aks_estate(arm_server, tmp_path) as found:
        yield found


def plan(estate: AksEstate, target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(estate.kubeconfig)}
    endpoint = estate.arm_server.endpoint_file(estate.folder / "arm.json")
    estate.arm.requests.clear()
    return subprocess.run(
        [sys.executable, str(WITH_FAKE_ARM), str(endpoint), "plan", "--target", str(target),
         "--reports-dir", str(estate.folder / "reports")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def test_plan_lists_instances_per_zone_and_the_servers(estate: AksEstate) -> None:
    done = plan(estate, EXAMPLE.relative_to(REPO))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = done.stdout
    # every scale-set instance, per region-scoped zone
    zone2 = next(line for line in out.splitlines() if line.startswith("  region westeurope"))
    assert (
        "zone westeurope-2: aks-erp-12345678-vmss/1 (node aks-erp-12345678-vmss000001, running), "
        "aks-system-12345678-vmss/1 (node aks-system-12345678-vmss000001, running)" in zone2
    )
    assert "zone northeurope-2: aks-erp-87654321-vmss/1" in out
    # the server it would fail over, and the replica it would promote
    assert (
        "database server erp-pg (westeurope, HA ZoneRedundant Healthy): primary erp-pg/zone-1"
        in out
    )
    assert (
        "dr replica erp-pg-dr (northeurope, GeoAsyncReplica): promoted with Switchover/Planned"
        in out
    )
    assert "would crash the database primary (erp-pg/zone-1)" in out
    # the zone outage takes only westeurope-2: the dr cluster's zone 2 is not in it
    zone_line = next(line for line in out.splitlines() if "would take zone" in line)
    assert "westeurope-2" in zone_line and "87654321" not in zone_line
    assert "REFUSED" not in out
    # a plan reads, never writes
    assert estate.arm.requests and {r.method for r in estate.arm.requests} == {"GET"}


def _variant(estate: AksEstate, change: dict[str, object]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["platform"].update(change)
    path = estate.folder / "variant.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_resource_group_not_allowed_is_refused_before_any_call(estate: AksEstate) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    cluster = {**data["platform"]["cluster"], "node_resource_group": "MC_rg-other_aks_westeurope"}
    done = plan(estate, _variant(estate, {"cluster": cluster}))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert (
        "cluster.node_resource_group" in lines[0] and "not in allowed_resource_groups" in lines[0]
    )
    assert estate.arm.requests == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subscriptions", "99999999-9999-9999-9999-999999999999", "is not the target's"),
        ("resourceGroups", "mc_rg-other_aks_westeurope", "is not allowed"),
    ],
)
def test_a_node_outside_the_allowlist_is_refused_before_any_arm_call(
    estate: AksEstate, field: str, value: str, message: str
) -> None:
    """The kube context points at a cluster whose nodes live elsewhere (a wrong
    context, another subscription): the whole run is refused, not node by node."""
    name = node_name("aks-erp-12345678-vmss", "2")

    def elsewhere(node: dict[str, object]) -> dict[str, object]:
        spec = node["spec"]
        assert isinstance(spec, dict)
        parts = spec["providerID"].split("/")
        parts[parts.index(field) + 1] = value
        spec["providerID"] = "/".join(parts)
        return node

    estate.primary.store.update("core/nodes", "", name, elsewhere)
    done = plan(estate, EXAMPLE.relative_to(REPO))
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ledgerdrill: refused: ")
    assert f"node {name}" in lines[0] and message in lines[0] and "Traceback" not in done.stderr
    assert estate.arm.requests == [], "refused before any ARM call"
    assert SUB
