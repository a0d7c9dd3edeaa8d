"""The Kubernetes backend's database witness (issue 32, step 2 on CloudNativePG): at each
promotion it reads the promoted instance's last replayed commit by psql in its pod,
against the fake API server and its CNPG operator. The SQL itself runs on a real promoted
PostgreSQL in tests/sandbox/test_truth_data_loss.py."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ledgerdrill.measure.db_loss import PROMOTED_MONO_NS, PROMOTION_EVIDENCE, database_loss
from ledgerdrill.platforms.kubernetes.promotion import REPLAY_SQL
from ledgerdrill.testing.fakeapi.podexec import ExecCall, ExecOutcome
from ledgerdrill.timeline import NS_PER_S, SystemClock

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import fake_cluster, fake_platform

CNPG = "postgresql.cnpg.io/clusters"
NS = "ledgerdrill"
REPLAY_AGE_S = 10.0  # what the fake psql says: the last replayed commit, this long ago


class FakePsql:
    """Answers the witness's psql as PostgreSQL would (``epoch|epoch``), and keeps who
    asked, where."""

    def __init__(self) -> None:
        self.calls: list[ExecCall] = []

    def __call__(self, call: ExecCall) -> ExecOutcome:
        self.calls.append(call)
        if call.command[:1] != ("psql",) or REPLAY_SQL not in call.command:
            return ExecOutcome(stderr=b"unexpected command", exit_code=2)
        now = time.time()
        return ExecOutcome(stdout=f"{now - REPLAY_AGE_S:.6f}|{now:.6f}\n".encode())


def test_a_crash_is_witnessed_on_the_instance_the_operator_promoted(tmp_path: Path) -> None:
    clock = SystemClock()
    with fake_cluster(tmp_path) as (fake, platform):
        psql = FakePsql()
        fake.exec_handler = psql
        platform.settle()
        t_inject = clock.now()
        old = platform.crash_primary()  # returns at once: the operator promotes later
        events = platform.events_between(t_inject, clock.now().plus(60))
        promoted = fake.store.get(CNPG, NS, "ledgerdrill-db")["status"]["currentPrimary"]
        assert promoted != old
        (event,) = events
        assert (event.kind, event.name) == (PROMOTION_EVIDENCE, promoted)
        # asked in the promoted instance's postgres container, nowhere else
        assert [(c.pod, c.container) for c in psql.calls] == [(promoted, "postgres")]
        assert psql.calls[0].command[:3] == ("psql", "-U", "postgres")
        facts = event.attributes
        assert facts["old_primary"] == old and "error" not in facts
        assert t_inject.mono_ns <= int(facts[PROMOTED_MONO_NS]) <= event.at.mono_ns  # type: ignore[arg-type]
        assert abs(float(facts["replay_age_s"]) - REPLAY_AGE_S) < 0.05  # type: ignore[arg-type]
        bound = database_loss(promoted, facts, t_inject)
        assert bound.upper_bound and bound.rpo_s is not None
        # the commit was 10 s before the read, the read came after the crash: the loss
        # reaches back at most 10 s (plus the read's error), less the time between
        read_after_s = (int(facts["read_mono_ns"]) - t_inject.mono_ns) / NS_PER_S  # type: ignore[arg-type]
        error = float(facts["read_error_s"])  # type: ignore[arg-type]
        assert read_after_s > 0
        assert abs(bound.rpo_s - (REPLAY_AGE_S - read_after_s + error)) < 0.05
        assert "at most" in bound.detail and old in bound.detail


def test_a_switchover_is_witnessed_at_once_and_a_failed_read_says_why(tmp_path: Path) -> None:
    clock = SystemClock()
    with fake_cluster(tmp_path) as (_, platform):  # no psql answer: exit 126, as runc
        platform.settle()
        start = clock.now()
        target = platform.switchover()
        (event,) = platform.events_between(start, clock.now())
        assert event.name == target
        said = database_loss(target, event.attributes, start)
        assert said.rpo_s is None and "psql in" in said.detail and "exited 126" in said.detail


def test_a_regional_promotion_is_witnessed_in_the_dr_cluster(tmp_path: Path) -> None:
    clock = SystemClock()
    with fake_platform(tmp_path) as (clusters, platform):
        psql = FakePsql()
        clusters.dr.exec_handler = psql
        clusters.primary.exec_handler = lambda call: ExecOutcome(exit_code=99)  # never asked
        start = clock.now()
        platform.region_outage("primary")
        platform.fail_over_to("dr")
        dr_primary = clusters.dr.store.get(CNPG, NS, "ledgerdrill-db")["status"]["currentPrimary"]
        (event,) = platform.events_between(start, clock.now())
        assert event.name == dr_primary and [c.pod for c in psql.calls] == [dr_primary]
        assert "(region primary)" in str(event.attributes["old_primary"])
        assert database_loss(dr_primary, event.attributes, start).rpo_s is not None
        platform.restore_region("primary")


def test_without_a_promotion_nothing_is_witnessed_and_nothing_waits(tmp_path: Path) -> None:
    clock = SystemClock()
    with fake_cluster(tmp_path) as (_, platform):
        start = clock.now()
        began = time.monotonic()
        assert platform.events_between(start, clock.now().plus(1)) == []
        assert time.monotonic() - began < 1.0  # no watch to wait for
