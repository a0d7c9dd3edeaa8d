"""Lost, recovered, unexpected and duplicate writes, and RPO (Jepsen's set checker)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.measure import Write, WriteOutcome, measure_loss
from ledgerdrill.timeline import NS_PER_S, Instant

T0 = datetime(2026, 1, 31, tzinfo=UTC)


def at(seconds: float) -> Instant:
    return Instant(round(seconds * NS_PER_S), T0)


def w(ref: str, outcome: str, t: float) -> Write:
    return Write(ref, WriteOutcome(outcome), at(t - 0.01), at(t))


def test_classification() -> None:
    writes = [
        w("a", "ok", 1),
        w("b", "ok", 2),
        w("c", "unknown", 3),
        w("d", "fail", 4),
        w("e", "ok", 5),
    ]
    loss = measure_loss(writes, {"a": 1, "c": 1, "d": 1, "e": 2, "zz": 1}, at(6))
    assert loss.lost == ("b",)
    assert loss.recovered == ("c",)
    assert loss.unexpected == ("zz",)
    assert loss.duplicates == ("e",)
    assert loss.failed_but_present == ("d",)
    assert abs(loss.rpo_s - 4.0) < 1e-9  # inject at 6, earliest lost ack at 2


def test_nothing_lost_means_rpo_zero() -> None:
    loss = measure_loss([w("a", "ok", 1), w("b", "fail", 2)], {"a": 1}, at(3))
    assert loss.rpo_s == 0
    assert not loss.lost
    assert loss.anomalies == 0


def test_lost_only_after_injection_gives_rpo_zero_but_still_lost() -> None:
    loss = measure_loss([w("a", "ok", 1), w("b", "ok", 5)], {"a": 1}, at(3))
    assert loss.lost == ("b",)
    assert loss.rpo_s == 0.0


def test_writes_lost_after_the_fault_span_the_rpo() -> None:
    # a restore to a point before the fault drops what was acknowledged until switch-over
    writes = [w("a", "ok", 1), w("b", "ok", 5), w("c", "ok", 6), w("d", "ok", 9.5)]
    loss = measure_loss(writes, {"a": 1}, at(3))
    assert loss.lost == ("b", "c", "d")
    assert loss.rpo_s == 4.5 == loss.loss_window_s


def test_retried_reference_counts_once_and_ok_wins() -> None:
    loss = measure_loss([w("a", "unknown", 1), w("a", "ok", 2)], {}, at(3))
    assert loss.lost == ("a",)
    assert loss.attempted == 1
    assert loss.unknown == 0


def test_rpo_against_restore_point() -> None:
    loss = measure_loss([w("a", "ok", 1)], {"a": 1}, at(10), restore_point=at(7.5))
    assert loss.rpo_vs_restore_point_s == 2.5


outcomes = st.sampled_from(["ok", "fail", "unknown"])


@given(
    writes=st.lists(
        st.tuples(st.text("abcdef", min_size=1, max_size=3), outcomes, st.floats(0, 100)),
        max_size=40,
    ),
    read=st.dictionaries(
        st.text("abcdefg", min_size=1, max_size=3), st.integers(0, 3), max_size=40
    ),
    t_inject=st.floats(0, 100),
)
def test_set_properties(
    writes: list[tuple[str, str, float]], read: dict[str, int], t_inject: float
) -> None:
    loss = measure_loss([w(r, o, t) for r, o, t in writes], read, at(t_inject))
    assert not set(loss.lost) & set(loss.recovered)
    assert not set(loss.lost) & set(loss.unexpected)
    present = {r for r, c in read.items() if c > 0}
    assert set(loss.lost).isdisjoint(present)
    assert set(loss.recovered) <= present
    assert loss.rpo_s >= 0
    if not loss.lost:
        assert loss.rpo_s == 0
    else:
        assert loss.earliest_lost_ack is not None
        assert loss.rpo_s >= at(t_inject).seconds_since(loss.earliest_lost_ack) - 1e-9
        assert loss.rpo_s >= loss.loss_window_s
    assert loss.ok + loss.failed + loss.unknown == loss.attempted


def test_the_canarys_first_write_lost_makes_the_rpo_a_lower_bound() -> None:
    """The canary's history starts with its first acknowledged write: when that one is
    lost, the loss may reach further back than the canary saw -- the figure is censored
    (a lower bound), not the loss."""
    writes = [w("a", "ok", 1), w("b", "ok", 2), w("c", "ok", 3)]
    censored = measure_loss(writes, {"c": 1}, at(4))
    assert censored.rpo_censored and abs(censored.rpo_s - 3.0) < 1e-9
    whole = measure_loss(writes, {"a": 1, "c": 1}, at(4))
    assert not whole.rpo_censored and abs(whole.rpo_s - 2.0) < 1e-9
    assert not measure_loss(writes, {"a": 1, "b": 1, "c": 1}, at(4)).rpo_censored


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_censored_exactly_when_the_earliest_acknowledged_write_is_lost(kept: list[bool]) -> None:
    writes = [w(f"r{i}", "ok", 1 + i) for i in range(len(kept))]
    loss = measure_loss(writes, {f"r{i}": 1 for i, k in enumerate(kept) if k}, at(100))
    assert loss.rpo_censored == (not kept[0])


@given(
    earlier_kept=st.lists(st.booleans(), min_size=1, max_size=8),
    known=st.sets(st.integers(0, 7)),
    window_kept=st.lists(st.booleans(), max_size=5),
)
def test_earlier_writes_are_rechecked_but_never_counted_or_reported_twice(
    earlier_kept: list[bool], known: set[int], window_kept: list[bool]
) -> None:
    """A canary shared by a run's scenarios (issue 32): every earlier acknowledged write
    missing now is lost here unless an earlier scenario reported it; only this window's
    writes are counted; the RPO reaches back to the earliest of them."""
    earlier = [w(f"e{i}", "ok", 1 + i) for i in range(len(earlier_kept))]
    window = [w(f"n{i}", "ok", 20 + i) for i in range(len(window_kept))]
    known_lost = {f"e{i}" for i in known if i < len(earlier_kept)}
    read_back = {f"e{i}": 1 for i, kept in enumerate(earlier_kept) if kept}
    read_back |= {f"n{i}": 1 for i, kept in enumerate(window_kept) if kept}
    loss = measure_loss(window, read_back, at(30), earlier=earlier, known_lost=known_lost)
    expected = {f"e{i}" for i, kept in enumerate(earlier_kept) if not kept} - known_lost
    expected |= {f"n{i}" for i, kept in enumerate(window_kept) if not kept}
    assert set(loss.lost) == expected
    assert loss.attempted == len(window) and loss.unexpected == ()
    if expected:
        first_lost = min(1 + int(r[1:]) if r[0] == "e" else 20 + int(r[1:]) for r in expected)
        assert abs(loss.rpo_s - (30 - first_lost)) < 1e-6
    else:
        assert loss.rpo_s == 0
    assert loss.canary_history_s is not None and abs(loss.canary_history_s - (30 - 0.99)) < 1e-6
