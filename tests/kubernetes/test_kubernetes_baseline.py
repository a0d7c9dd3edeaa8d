"""The Kubernetes backend's part in "left as it was found": replicas the operator
counts healthy read as streaming, and ``settle`` waits for CloudNativePG to rebuild a
lost instance before the baseline comparison -- or says, naming the phase, that it
did not within ``wait_timeout``. Against the fake API server and its CNPG operator."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.shape import differences, read_shape

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import fake_cluster

CNPG = "postgresql.cnpg.io/clusters"
NS = "ledgerdrill"


def test_replicas_the_operator_counts_healthy_read_as_streaming(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        platform.settle()  # the operator has every instance ready
        topology = platform.database_topology()
        replicas = [m for m in topology.members if m.role != "primary"]
        assert replicas and all(m.streaming is True for m in replicas), topology
        # the operator's field is the witness: where it says otherwise, so do we
        healthy = fake.store.get(CNPG, NS, "ledgerdrill-db")["status"]["instancesStatus"]
        assert sorted(healthy["healthy"]) == sorted(m.name for m in topology.members)


def test_settle_waits_for_the_operator_to_rebuild_a_lost_primary(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_, platform):
        platform.settle()
        before = read_shape(platform)
        lost = platform.crash_primary()
        right_after = read_shape(platform)
        assert differences(before, right_after), "a lost instance went unnoticed"
        done = platform.settle()
        after = read_shape(platform)
        # roles may have swapped (a replica was promoted); the shape is equivalent
        assert differences(before, after) == [], (done, after)
        assert platform.database_topology().primary is not None
        assert lost in {m.name for m in platform.database_topology().members}


def test_settle_says_when_the_operator_has_not_rebuilt_in_time(tmp_path: Path) -> None:
    # the fake re-creates a lost pod after 0.6 s; a 0.1 s bound cannot see it
    with fake_cluster(tmp_path, wait_timeout="100ms") as (_, platform):
        platform.crash_primary()
        with pytest.raises(PlatformError, match=r"not rebuilt within 0\.1s: phase .*ready"):
            platform.settle()
