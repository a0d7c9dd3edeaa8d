"""The database as the second RPO witness (issue 32): its figure from a promotion's
facts, and the reported RPO as the larger of the two witnesses, with its source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.measure import Write, WriteOutcome, measure_loss
from ledgerdrill.measure.db_loss import database_loss, with_database_witness
from ledgerdrill.timeline import NS_PER_S, Instant

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def wall(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def event(**attributes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "old_primary": "db-a",
        "promoted_was_sync_standby": False,
        "last_replayed_commit": wall(10.0),
        "lost_commits": 0,
        "first_lost_commit": None,
        "newest_lost_commit": None,
    }
    return base | attributes


def test_nothing_lost_is_zero_from_the_database() -> None:
    found = database_loss("dr-db", event())
    assert found.rpo_s == 0 and found.lost_commits == 0
    assert "dr-db" in found.detail and "db-a" in found.detail


def test_an_async_promotion_loses_from_the_last_replayed_to_the_newest_commit() -> None:
    found = database_loss(
        "dr-db",
        event(lost_commits=42, first_lost_commit=wall(10.05), newest_lost_commit=wall(17.3)),
    )
    assert found.rpo_s is not None and abs(found.rpo_s - 7.3) < 1e-6
    assert found.lost_commits == 42 and found.acknowledged
    assert "42 commits" in found.detail


def test_a_synchronous_standby_lacks_only_commits_never_acknowledged() -> None:
    # in flight when the primary crashed: written there, never confirmed by the standby
    found = database_loss(
        "db-b",
        event(
            promoted_was_sync_standby=True,
            lost_commits=2,
            first_lost_commit=wall(10.01),
            newest_lost_commit=wall(10.02),
        ),
    )
    assert found.rpo_s == 0 and not found.acknowledged
    assert "never acknowledged" in found.detail


def test_no_replayed_commit_known_counts_from_the_first_lost_one() -> None:
    found = database_loss(
        "dr-db",
        event(last_replayed_commit=None, lost_commits=3,
              first_lost_commit=wall(11), newest_lost_commit=wall(14)),
    )  # fmt: skip
    assert found.rpo_s == 3.0 and "at least" in found.detail


def test_a_witness_that_could_not_read_says_why_and_gives_no_figure() -> None:
    found = database_loss("dr-db", {"old_primary": "db-a", "error": "WAL segment X is gone"})
    assert found.rpo_s is None and "WAL segment X is gone" in found.detail


def at(seconds: float) -> Instant:
    return Instant(round(seconds * NS_PER_S), T0 + timedelta(seconds=seconds))


def canary_loss(lost_acks: list[float], kept_acks: list[float], t_inject: float) -> object:
    writes = [Write(f"l{i}", WriteOutcome.OK, at(t - 0.01), at(t)) for i, t in enumerate(lost_acks)]
    writes += [
        Write(f"k{i}", WriteOutcome.OK, at(t - 0.01), at(t)) for i, t in enumerate(kept_acks)
    ]
    read_back = {f"k{i}": 1 for i in range(len(kept_acks))}
    return measure_loss(writes, read_back, at(t_inject))


def test_a_censored_canary_is_completed_by_the_database() -> None:
    # the canary began at 15 and lost everything it wrote: it can only say >= 2 s
    loss = canary_loss([15.0, 16.0, 17.0], [], 17.0)
    assert loss.rpo_censored  # type: ignore[attr-defined]
    db = database_loss(
        "dr-db",
        event(lost_commits=70, first_lost_commit=wall(10.1), newest_lost_commit=wall(17.0)),
    )
    combined = with_database_witness(loss, [db])  # type: ignore[arg-type]
    assert combined.rpo_source == "database" and not combined.rpo_censored
    assert abs(combined.rpo_s - 7.0) < 1e-6 and combined.rpo_canary_s == 2.0
    assert combined.database == (db,)


def test_without_a_database_figure_the_canary_stands_as_it_was() -> None:
    loss = canary_loss([15.0, 16.0], [14.0], 17.0)
    unread = database_loss("dr-db", {"old_primary": "db-a", "error": "gone"})
    for witnesses in ([], [unread]):
        combined = with_database_witness(loss, witnesses)  # type: ignore[arg-type]
        assert combined.rpo_s == loss.rpo_s and combined.rpo_source == "canary"  # type: ignore[attr-defined]
        assert combined.rpo_censored == loss.rpo_censored  # type: ignore[attr-defined]


@given(
    canary_lost=st.lists(st.floats(0, 30), max_size=5),
    database_rpo=st.floats(0, 30),
)
def test_the_reported_rpo_is_never_below_either_witness(
    canary_lost: list[float], database_rpo: float
) -> None:
    loss = canary_loss(sorted(canary_lost), [0.0], 30.0)
    db = database_loss(
        "dr-db",
        event(lost_commits=1, first_lost_commit=wall(10 + database_rpo),
              newest_lost_commit=wall(10 + database_rpo)),
    )  # fmt: skip
    combined = with_database_witness(loss, [db])  # type: ignore[arg-type]
    assert combined.rpo_s >= loss.rpo_s - 1e-9  # type: ignore[attr-defined]
    assert db.rpo_s is not None and combined.rpo_s >= db.rpo_s - 1e-9
    assert combined.rpo_s in (loss.rpo_s, db.rpo_s)  # type: ignore[attr-defined]


def test_a_backend_that_cannot_read_a_promotion_says_so_and_the_sandbox_can() -> None:
    from pathlib import Path

    from ledgerdrill.platforms.base import Platform
    from ledgerdrill.platforms.sandbox.platform import SandboxPlatform
    from ledgerdrill.platforms.sandbox.topology import default_topology

    class Elsewhere(Platform):
        kind = "kubernetes"

    assert "kubernetes backend does not read" in Elsewhere("k").database_witness_gap()
    assert (
        SandboxPlatform("s", Path("/nonexistent"), default_topology()).database_witness_gap() == ""
    )
    # Azure says what Flexible Server does not give, and that the canary stands alone;
    # the Kubernetes backend reads each CloudNativePG promotion's replay point
    from ledgerdrill.platforms.azure.platform import AzurePlatform
    from ledgerdrill.platforms.kubernetes.platform import KubernetesPlatform

    said = AzurePlatform.database_witness_gap(None)  # type: ignore[arg-type]  # reads no state
    assert "Flexible" in said and said.endswith("the canary stands alone"), said
    assert KubernetesPlatform.database_witness_gap(None) == ""  # type: ignore[arg-type]
