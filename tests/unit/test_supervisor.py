"""The supervisor restarts crashed programs, reschedules evicted replicas and brings
them home -- checked on real processes, with the loop driven pass by pass."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from ledgerdrill.platforms.sandbox.nodes import NodeProcesses
from ledgerdrill.platforms.sandbox.procs import wait_until
from ledgerdrill.platforms.sandbox.services import Service
from ledgerdrill.platforms.sandbox.supervisor import Supervisor
from ledgerdrill.platforms.sandbox.topology import default_topology
from ledgerdrill.ports import free_port
from ledgerdrill.processes import pid_alive

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def launcher(node: str) -> tuple[list[str], int]:
    return SLEEPER, free_port()


@pytest.fixture
def world(
    tmp_path: Path,
) -> Iterator[tuple[Supervisor, Service, Service, list[tuple[str, str, dict[str, Any]]]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    erp = Service("erp-replica-b", "erp-b", tmp_path, launcher, reschedulable=True)
    cache = Service("redis", "cache-c", tmp_path, launcher)
    sup = Supervisor(
        default_topology(),
        [erp, cache],
        lambda k, n, a: events.append((k, n, a)),
        eviction_timeout_s=1.0,
    )
    erp.start()
    cache.start()
    yield sup, erp, cache, events
    for service in (erp, cache):
        for node in ("erp-a", "erp-b", "erp-c", "cache-c"):
            service.stop(node=node)


def test_crashed_program_on_healthy_node_is_restarted(world) -> None:  # type: ignore[no-untyped-def]
    sup, _, cache, events = world
    first = cache.pid
    psutil.Process(first).kill()
    wait_until(lambda: not pid_alive(first), timeout_s=5, what="kill")
    sup.reconcile()
    assert cache.alive() and cache.pid != first
    assert ("supervisor.restarted", "redis", {"node": "cache-c", "count": 1}) in events


def test_crashed_node_is_not_restarted_then_evicted_then_returns_home(world) -> None:  # type: ignore[no-untyped-def]
    sup, erp, _, events = world
    NodeProcesses(erp.state_dir, "erp-b").crash()
    t0 = time.monotonic()
    sup.reconcile(t0)
    assert not erp.alive()  # a powered-off node restarts nothing
    sup.reconcile(t0 + 0.5)
    assert not erp.alive()
    sup.reconcile(t0 + 1.1)  # past the eviction timeout
    assert erp.node in {"erp-a", "erp-c"} and erp.alive() and erp.evicted_from == "erp-b"
    assert any(k == "supervisor.rescheduled" for k, *_ in events)
    stand_in = erp.pid
    NodeProcesses(erp.state_dir, "erp-b").restore()
    sup.reconcile(t0 + 2)
    assert erp.node == "erp-b" and erp.alive() and erp.evicted_from is None
    wait_until(lambda: not pid_alive(stand_in), timeout_s=5, what="stand-in to stop")


def test_thawed_original_is_adopted_not_duplicated(world) -> None:  # type: ignore[no-untyped-def]
    sup, erp, _, events = world
    original, original_port = erp.pid, erp.port
    # what the load balancer is told: where the service listens after each change
    routed: list[int | None] = []
    erp.on_started = lambda service: routed.append(service.port)
    NodeProcesses(erp.state_dir, "erp-b").freeze()
    t0 = time.monotonic()
    sup.reconcile(t0)
    sup.reconcile(t0 + 1.5)
    assert erp.evicted_from == "erp-b" and erp.alive() and erp.pid != original
    NodeProcesses(erp.state_dir, "erp-b").restore()
    sup.reconcile(t0 + 2)
    assert erp.pid == original and erp.port == original_port
    assert events[-1][0] == "supervisor.returned-home" and events[-1][2]["adopted"] is True
    # the stand-in's port was announced, then the original's again: Traefik once kept
    # routing to the stopped stand-in (the replica out of rotation after a node-freeze)
    assert len(routed) == 2 and routed[0] != original_port, routed
    assert routed[-1] == original_port, routed
