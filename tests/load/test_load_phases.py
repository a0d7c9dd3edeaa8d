"""Per-phase load statistics: properties that hold for any series and any boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerdrill.load.model import PHASES, LoadResult, SecondStats
from ledgerdrill.load.phases import percentile, summarise, time_until_p95_back

T0 = dt.datetime(2026, 1, 31, 23, 0, tzinfo=dt.UTC)


def second(t: int, requests: int, failures: int, hist: dict[int, int] | None = None) -> SecondStats:
    if hist is None:
        hist = {10: requests} if requests else {}
    return SecondStats(
        t_s=t, at=T0 + dt.timedelta(seconds=t), requests=requests, failures=failures,
        latency_hist_ms=hist,
    )  # fmt: skip


def result(seconds: list[SecondStats]) -> LoadResult:
    return LoadResult(
        profile="test", started_at=T0, started_epoch_s=T0.timestamp(),
        duration_s=float(len(seconds)), seconds=seconds,
        requests=sum(s.requests for s in seconds), failures=sum(s.failures for s in seconds),
        counts_source="listener", ended_by="profile-end",
    )  # fmt: skip


@st.composite
def series(draw: st.DrawFn) -> list[SecondStats]:
    n = draw(st.integers(min_value=0, max_value=40))
    out = []
    for t in range(n):
        hist = draw(st.dictionaries(st.integers(1, 5000), st.integers(1, 50), max_size=5))
        requests = sum(hist.values())
        failures = draw(st.integers(0, requests))
        out.append(second(t, requests, failures, hist))
    return out


@st.composite
def boundaries(draw: st.DrawFn) -> tuple[float | None, float | None, float | None]:
    inject = draw(st.none() | st.floats(0, 45, allow_nan=False))
    if inject is None:
        return None, None, None
    recovered = draw(st.none() | st.floats(inject, 50, allow_nan=False))
    if recovered is None:
        return inject, None, None
    post = draw(st.none() | st.floats(recovered, 60, allow_nan=False))
    return inject, recovered, post


@settings(max_examples=200, deadline=None)
@given(series(), boundaries())
def test_phases_partition_the_seconds_and_totals_add_up(seconds, bounds):
    inject, recovered, post = bounds
    summary = summarise(result(seconds), inject, recovered, t_post_recovery_s=post)
    assert [p.phase for p in summary.phases] == list(PHASES)
    assert sum(p.seconds for p in summary.phases) == len(seconds)
    assert summary.requests == sum(s.requests for s in seconds)
    assert summary.failures == sum(s.failures for s in seconds)
    assert sum(p.requests for p in summary.phases) == summary.requests
    for phase in summary.phases:
        assert phase.start_s <= phase.end_s
        if phase.requests:
            assert phase.error_rate is not None and 0 <= phase.error_rate <= 1
            assert phase.p50_ms is not None and phase.p95_ms is not None
            assert phase.p50_ms <= phase.p95_ms <= (phase.p99_ms or 0)
        else:
            assert phase.error_rate is None and phase.p95_ms is None
    if inject is None:
        assert summary.phase("baseline").seconds == len(seconds)


@settings(max_examples=200, deadline=None)
@given(series(), boundaries())
def test_p95_back_is_never_before_recovery_and_only_after_recovery(seconds, bounds):
    inject, recovered, post = bounds
    summary = summarise(result(seconds), inject, recovered, t_post_recovery_s=post)
    if summary.p95_back_after_s is not None:
        assert recovered is not None and summary.p95_back_after_s >= 0
        assert summary.p95_limit_ms is not None
    else:
        assert summary.p95_back_reason


@given(st.dictionaries(st.integers(0, 10_000), st.integers(1, 100), min_size=1),
       st.floats(0.01, 1.0))  # fmt: skip
def test_percentile_is_a_value_of_the_histogram_and_monotonic(hist, q):
    value = percentile(hist, q)
    assert value in hist
    assert percentile(hist, min(1.0, q + 0.1)) >= value  # type: ignore[operator]


def test_percentile_of_nothing_is_none_and_bad_q_raises():
    assert percentile({}, 0.95) is None
    with pytest.raises(ValueError):
        percentile({1: 1}, 0)


def test_p95_back_needs_a_stable_run_after_recovery():
    slow = {900: 10}
    seconds = [second(t, 10, 0) for t in range(5)]  # baseline p95 10 ms
    seconds += [second(t, 10, 5, slow) for t in range(5, 10)]  # fault
    seconds += [second(10, 10, 0), second(11, 10, 0, slow)]  # a relapse
    seconds += [second(t, 10, 0) for t in range(12, 20)]
    summary = summarise(result(seconds), 5.0, 10.0, stable_s=3)
    assert summary.baseline_p95_ms == 10
    assert summary.p95_limit_ms == 35  # 10 + 25 ms beats 10 x 1.5
    assert summary.p95_back_after_s == 2.0
    fault = summary.phase("fault")
    assert (fault.requests, fault.failures, fault.error_rate) == (50, 25, 0.5)
    assert summary.phase("recovery").seconds == 10 - 0  # [10, 20): window 10 s


def test_a_second_without_requests_is_not_back():
    seconds = [second(0, 5, 0), second(1, 0, 0), second(2, 5, 0), second(3, 5, 0)]
    assert time_until_p95_back(seconds, 1.0, 20.0, 2) == 1.0
    assert time_until_p95_back(seconds, 1.0, 20.0, 3) is None


def test_recovery_before_injection_is_refused():
    with pytest.raises(ValueError):
        summarise(result([]), 10.0, 5.0)
