"""Users' figures from the per-request record, tested from the definitions in
``ledgerdrill.measure.users`` -- with a brute-force witness (time cut into 1 ms steps)
for the stall, which the sweep in the module must agree with."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerdrill.measure.recovery import StabilityWindow
from ledgerdrill.measure.users import Outcome, UserRequest, measure_users, stalls

T0 = 1_700_000_000.0  # epoch seconds: the record is on wall time


def req(start: float, end: float | None, outcome: Outcome | None = "ok") -> UserRequest:
    return UserRequest(T0 + start, None if end is None else T0 + end, outcome if end else None)


def steady(start: float, end: float, every: float = 0.1, took: float = 0.05) -> list[UserRequest]:
    """One request sent every ``every`` s, each answered OK after ``took`` s."""
    n = round((end - start) / every)
    return [req(start + i * every, start + i * every + took) for i in range(n)]


def figures(requests: list[UserRequest], t_inject: float, end: float, **kw: object):  # type: ignore[no-untyped-def]
    return measure_users(requests, t_inject=T0 + t_inject, end=T0 + end, **kw)  # type: ignore[arg-type]


# -- examples from the definitions -------------------------------------------------------------


def test_no_requests_at_all_gives_absent_figures_with_a_reason_never_zero() -> None:
    users = figures([], 10, 30)
    assert users.requests == 0
    assert users.rto_s is None and users.longest_stall_s is None
    assert users.error_rate_during_fault is None and users.p95_back_to_baseline_s is None
    assert users.absent["longest_stall_s"] == "no user request was in flight after the fault"
    assert set(users.absent) >= {"rto_s", "error_rate_during_fault", "p95_back_to_baseline_s"}


def test_undisturbed_users_have_no_impact_and_an_error_rate_of_zero() -> None:
    users = figures(steady(0, 30), 10, 30)
    assert users.recovered is True and users.rto_s == 0.0
    assert users.reason == "no impact seen by users"
    assert users.longest_stall_s == pytest.approx(0.05, abs=1e-3)
    assert users.error_rate_during_fault == 0.0
    assert users.p95_back_to_baseline_s == 0.0
    assert users.requests_lost == 0


def test_a_freeze_where_every_request_hangs_then_succeeds_is_a_stall_and_an_outage() -> None:
    """The node-freeze case: nothing fails, users simply get no answers for 9 s."""
    before = steady(0, 10)
    hung = [req(10 + i * 0.1, 19.0 + i * 0.01) for i in range(5)]  # sent, answered at 19 s
    after = steady(19.2, 40)
    users = figures(before + hung + after, 10, 40)
    assert users.longest_stall_s == pytest.approx(9.0, abs=0.06)
    # the hung requests were trouble (their users waited 9 s): served again at the answer
    # of the first request sent after them, 19.25; the truth (19.0, when the hung ones
    # were answered) lies inside the bar, which reaches back to the last send before it
    assert users.rto_s == pytest.approx(9.25, abs=1e-3)
    assert users.rto_error_s == pytest.approx(19.25 - 10.4, abs=1e-3)
    assert users.recovered is True
    assert users.error_rate_during_fault == 0.0  # slow is not failed: the stall shows it
    assert users.longest_wait_s == pytest.approx(9.0, abs=0.06)


def test_a_hung_request_is_a_stall_even_if_it_never_fails_or_finishes() -> None:
    users = figures([req(10.0, None)], 10, 20)
    assert users.longest_stall_s == pytest.approx(10.0, abs=1e-3)
    assert users.recovered is False
    assert "still waiting" in users.reason
    assert users.requests_lost == 1
    assert users.error_rate_during_fault == 1.0  # never answered counts against


def test_one_hung_user_among_served_ones_is_a_long_wait_not_a_stall() -> None:
    users = figures([*steady(0, 30), req(12.0, None)], 10, 30)
    # someone is always waiting from 12 s on, so the stall is the gap between answers
    assert users.longest_stall_s == pytest.approx(0.1, abs=1e-3)
    assert users.longest_wait_s == pytest.approx(18.0, abs=1e-3)
    assert users.requests_lost == 1
    # ... but that user is stuck: not "no impact", and not recovered while it waits
    assert users.recovered is False and "still waiting" in users.reason


def test_a_user_stuck_on_a_frozen_replica_is_trouble_dated_by_its_send() -> None:
    """One user kept 9.4 s on a frozen replica while others are served: trouble, dated
    by its send as a probe's failed sample is -- users sent afterwards were served, so
    users' RTO is short, and the 9.4 s wait is the figure that says one was stuck (the
    verdict judges it against the tier's RTO)."""
    stuck = req(10.5, 19.9)  # routed to the frozen replica, answered once it thawed
    users = figures([*steady(0, 30), stuck], 10, 30)
    assert users.longest_stall_s is not None and users.longest_stall_s < 1.0
    assert users.longest_wait_s == pytest.approx(9.4, abs=1e-3)
    assert users.rto_s == pytest.approx(0.65, abs=1e-3)  # sent 10.6, answered 10.65
    assert users.rto_error_s == pytest.approx(0.15, abs=1e-3)  # back to the stuck send
    assert users.reason != "no impact seen by users"


def test_a_request_held_then_answered_504_is_dated_by_its_send() -> None:
    """Hardened Traefik in front of a frozen replica: what was routed there before it left
    the rotation ends in a 504 after the 2 s response-header timeout. Users sent after
    it are served at once -- the probes see the same, so the two RTOs agree."""
    held = [req(10.1, 12.1, "error"), req(10.4, 12.4, "error")]
    users = figures([*steady(0, 30), *held], 10, 30)
    assert users.rto_s == pytest.approx(0.55, abs=1e-3)  # sent 10.5, answered 10.55
    assert users.rto_error_s == pytest.approx(0.15, abs=1e-3)  # since the send at 10.4
    assert users.longest_wait_s == pytest.approx(2.0, abs=1e-3)
    assert users.error_rate_during_fault is not None and users.error_rate_during_fault > 0


def test_a_request_abandoned_by_the_load_itself_is_no_failure_and_no_loss() -> None:
    """A ramp-down stops users; one was waiting 1 ms on its answer (seen in CI: read as
    'never answered, waiting to the end', it failed a healthy failover). It ended when
    its user was stopped: no failure, not lost, no trouble, counted in no error rate."""
    abandoned = req(18.998, 18.999, "abandoned")
    users = figures([*steady(0, 30), abandoned], 10, 30)
    assert users.rto_s == 0.0 and users.reason == "no impact seen by users"
    assert users.requests_lost == 0 and users.error_rate_during_fault == 0.0
    assert users.longest_wait_s is not None and users.longest_wait_s < 0.1


def test_a_long_wait_ended_by_the_load_stopping_its_user_is_still_trouble() -> None:
    """Abandoned after 5 s stuck on a frozen replica: the wait was real, users recovered
    only after it (its end), though it is neither a failure nor lost."""
    abandoned = req(12.0, 17.0, "abandoned")
    users = figures([*steady(0, 30), abandoned], 10, 30)
    assert users.longest_wait_s == pytest.approx(5.0, abs=1e-3)
    assert users.rto_s == pytest.approx(2.15, abs=1e-3)  # the first sent after it: 12.1
    assert users.requests_lost == 0 and users.error_rate_during_fault == 0.0


def test_a_wait_shorter_than_the_threshold_is_no_trouble() -> None:
    users = figures([*steady(0, 30), req(10.5, 11.3)], 10, 30, stall_threshold_s=1.0)
    assert users.rto_s == 0.0 and users.reason == "no impact seen by users"


def test_overlapping_requests_stall_between_successes() -> None:
    # A waits 0..5, B 1..2: B's answer at 2 cuts the stretch; A then waits alone to 5
    found = stalls([req(0, 5), req(1, 2)], T0, T0 + 10)
    assert [(s.start - T0, s.end - T0, s.ended_by) for s in found] == [
        (0, 2, "success"),
        (2, 5, "success"),
    ]


def test_failures_then_successes_date_recovery_by_the_first_answer_after_the_last_failure() -> None:
    failing = [req(10 + i * 0.1, 10 + i * 0.1 + 0.02, "error") for i in range(30)]  # to 12.92
    users = figures([*steady(0, 10), *failing, *steady(13.0, 30)], 10, 30)
    assert users.rto_s == pytest.approx(3.05, abs=1e-3)  # 13.0 sent, answered 13.05
    assert users.rto_error_s == pytest.approx(0.15, abs=1e-3)  # since the last failed send, 12.9
    assert users.error_rate_during_fault == pytest.approx(30 / 31, abs=1e-3)


def test_a_flap_after_apparent_recovery_moves_recovery_later() -> None:
    record = [*steady(0, 10), req(10, 10.2, "error"), *steady(10.3, 15), req(15, 15.2, "error")]
    record += steady(15.3, 30)
    users = figures(record, 10, 30)
    assert users.rto_s == pytest.approx(5.35, abs=1e-3)


def test_too_short_a_healthy_run_at_the_end_is_not_recovery() -> None:
    record = [*steady(0, 10), req(10, 19.5, "unanswered"), *steady(19.6, 20)]
    users = figures(record, 10, 20)
    assert users.recovered is False
    assert "stability window" in users.reason
    assert users.requests_lost == 1
    assert "rto_s" in users.absent


def test_p95_back_to_baseline_waits_for_three_windows_within_the_limit() -> None:
    record = [*steady(0, 10), req(10, 11, "error")]
    record += steady(11.0, 14.0, took=0.5)  # served, but slowly: 500 ms against 50 ms
    record += steady(14.0, 30)
    users = figures(record, 10, 30)
    assert users.rto_s == pytest.approx(1.5, abs=1e-3)  # first answer at 11.5
    assert users.baseline_p95_ms == pytest.approx(50, abs=1e-3)
    assert users.p95_back_to_baseline_s is not None
    # slow answers arrive until 14.4: the first window wholly within starts at or after it
    assert 2.5 <= users.p95_back_to_baseline_s <= 3.5


def test_a_request_answered_before_it_was_sent_is_refused() -> None:
    with pytest.raises(ValueError, match="before it was sent"):
        UserRequest(10.0, 9.0, "ok")
    with pytest.raises(ValueError, match="both an end and an outcome"):
        UserRequest(10.0, 11.0, None)


# -- properties --------------------------------------------------------------------------------

request_strategy = st.builds(
    lambda start, took, outcome, never: req(
        start, None if never else start + took, None if never else outcome
    ),
    st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 3)),
    st.floats(0.001, 6, allow_nan=False).map(lambda x: round(x, 3)),
    st.sampled_from(["ok", "ok", "ok", "error", "unanswered"]),
    st.sampled_from([False, False, False, False, True]),  # never answered
)


def brute_force_longest_stall(requests: list[UserRequest], start: float, end: float) -> float:
    """1 ms steps: a step is stalled when someone waits through all of it; a success at a
    step's end closes the run with that step; a step nobody waits through breaks it."""
    step, tolerance = 0.001, 1e-6
    success_at = {
        round((r.end - start) / step)
        for r in requests
        if r.ok and r.end is not None and start < r.end <= end
    }
    longest = run = 0
    for i in range(round((end - start) / step)):
        lo, hi = start + i * step, start + (i + 1) * step
        waiting = any(
            r.start <= lo + tolerance and r.waiting_until(end) >= hi - tolerance for r in requests
        )
        run = run + 1 if waiting else 0
        longest = max(longest, run)
        if i + 1 in success_at:
            run = 0
    return longest * step


@settings(max_examples=150, deadline=None)
@given(st.lists(request_strategy, max_size=12))
def test_the_longest_stall_agrees_with_a_brute_force_witness(requests: list[UserRequest]) -> None:
    t_inject, end = T0 + 2.0, T0 + 24.0
    users = measure_users(requests, t_inject=t_inject, end=end)
    if users.requests == 0:
        assert users.longest_stall_s is None
        return
    witness = brute_force_longest_stall(requests, t_inject, end)
    assert users.longest_stall_s == pytest.approx(witness, abs=0.003)


@settings(max_examples=200, deadline=None)
@given(st.lists(request_strategy, max_size=15), st.floats(-1000, 1000).map(lambda x: round(x, 1)))
def test_figures_are_consistent_and_do_not_move_when_every_time_shifts(
    requests: list[UserRequest], shift: float
) -> None:
    t_inject, end = T0 + 2.0, T0 + 24.0
    users = measure_users(requests, t_inject=t_inject, end=end)
    moved = [
        UserRequest(r.start + shift, None if r.end is None else r.end + shift, r.outcome)
        for r in requests
    ]
    shifted = measure_users(moved, t_inject=t_inject + shift, end=end + shift)
    for name in ("rto_s", "longest_stall_s", "error_rate_during_fault", "longest_wait_s"):
        a, b = getattr(users, name), getattr(shifted, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert math.isclose(a, b, abs_tol=1e-6), name
    assert users.requests_lost == shifted.requests_lost
    if users.rto_s is not None:
        assert 0 <= users.rto_s <= end - t_inject
        assert users.rto_error_s is not None and 0 <= users.rto_error_s <= users.rto_s + 1e-9
        if users.rto_s > 0:  # a success dates it, and no trouble was sent after it
            at = t_inject + users.rto_s
            assert any(r.ok and r.end is not None and math.isclose(r.end, at) for r in requests)
            for r in requests:
                failed = r.failed and r.end is not None and t_inject <= r.end <= end
                waited = r.waiting_until(end) - max(r.start, t_inject) >= 1.0
                if r.start < end and r.waiting_until(end) >= t_inject and (failed or waited):
                    assert r.start < at, (r, users.rto_s)
                    # ... and the bar starts no earlier than the last trouble's send
                    assert at - users.rto_error_s >= max(r.start, t_inject) - 1e-6, r
    for name in users.absent:
        assert getattr(users, name) is None, name
    if users.error_rate_during_fault is not None:
        assert 0 <= users.error_rate_during_fault <= 1
    if users.longest_stall_s is not None:
        assert 0 <= users.longest_stall_s <= end - t_inject + 1e-9


def test_a_shorter_stability_window_can_only_recover_earlier_or_equally() -> None:
    record = [*steady(0, 10), req(10, 12, "error"), *steady(12.1, 13.0)]
    loose = figures(record, 10, 13, window=StabilityWindow(2, 0.5))
    strict = figures(record, 10, 13, window=StabilityWindow(5, 2.0))
    assert loose.recovered is True and strict.recovered is False


def _window_with(slow: int) -> list[UserRequest]:
    """Baseline 0-10 s answered in 50 ms; after the fault, one-second windows of 17
    answers of 20 ms, ``slow`` of them in the window 12-13 s taking 109 ms."""
    record = steady(0, 10, every=0.1, took=0.05)
    for second in range(10, 20):
        for i in range(17):
            took = 0.109 if second == 12 and i < slow else 0.02
            sent = second + i / 17
            record.append(req(sent, sent + took))
    return record


def test_one_slow_answer_among_seventeen_does_not_break_a_p95_window() -> None:
    """Seen in a game day: the nearest-rank p95 of 17 values is their maximum, so a
    single 109 ms answer failed "p95 back to baseline" (limit 75 ms here)."""
    one = figures(_window_with(1), 10, 20)
    assert one.rto_s == 0.0 and one.baseline_p95_ms == pytest.approx(50, abs=1e-3)
    assert one.p95_back_to_baseline_s == 0.0
    # two slow answers of seventeen (12%) are more than 5%: that window breaks the run
    two = figures(_window_with(2), 10, 20)
    assert two.p95_back_to_baseline_s is not None and two.p95_back_to_baseline_s >= 2.9


@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=60))
def test_the_percentile_lies_between_its_two_nearest_ranks(values: list[float]) -> None:
    from ledgerdrill.measure.users import _percentile

    ordered = sorted(values)
    p95 = _percentile(ordered, 0.95)
    assert p95 is not None
    rank = (len(ordered) - 1) * 0.95
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    assert low - 1e-9 <= p95 <= high + 1e-9
    assert _percentile(ordered, 1.0) == ordered[-1] and _percentile(ordered, 0.0) == ordered[0]


# -- p95 during the fault (issue 39: a degradation is judged by how slow, not how long) ---------


def test_a_slow_link_shows_in_the_p95_of_requests_sent_during_the_fault() -> None:
    before = steady(0, 10, took=0.05)
    during = steady(10, 20, took=0.80)  # every request answered, each 0.8 s
    after = steady(20, 25, took=0.05)
    users = figures(before + during + after, 10, 25, fault_end=T0 + 20)
    assert users.p95_during_fault_ms == pytest.approx(800, abs=0.01)  # epoch floats
    assert users.error_rate_during_fault == 0


def test_failures_are_the_error_rates_and_the_p95_is_of_the_users_served() -> None:
    requests = [*steady(0, 10), *steady(10, 11, took=0.1), req(11.0, None), req(10.5, 12.5, "error")]
    users = figures(requests, 10, 14, fault_end=T0 + 11)
    assert users.p95_during_fault_ms == pytest.approx(100, abs=0.01)
    assert users.error_rate_during_fault == pytest.approx(2 / 12)


def test_no_request_during_the_fault_gives_no_p95_and_says_why() -> None:
    users = figures([*steady(0, 10), req(10.5, None)], 10, 12, fault_end=T0 + 12)
    assert users.p95_during_fault_ms is None
    assert "p95_during_fault_ms" in users.absent


def _type7(values: list[float], q: float) -> float:
    h = (len(values) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(values) - 1)
    return values[low] + (h - low) * (values[high] - values[low])


@settings(max_examples=150, deadline=None)
@given(st.lists(request_strategy, min_size=1, max_size=15), st.floats(4, 20))
def test_the_p95_during_the_fault_is_the_percentile_of_the_windows_waits(
    requests: list[UserRequest], fault_s: float
) -> None:
    """A witness from the definition: the successful requests among those the error rate
    counts (sent by the end of the fault window -- the later of the users' recovery and
    the fault's end, at least one stability window -- and answered during observation),
    each with its response time."""
    t_inject, end, fault_end = T0 + 2.0, T0 + 24.0, T0 + 2.0 + fault_s
    users = measure_users(requests, t_inject=t_inject, end=end, fault_end=fault_end)
    if users.requests == 0:
        return
    until = end if users.rto_s is None else t_inject + users.rto_s
    until = max(until, min(fault_end, end))
    until = min(end, max(until, t_inject + StabilityWindow().min_duration_s))
    # the error rate's population: answered during observation or never, sent by `until`
    waits = sorted(
        (r.waiting_until(end) - r.start) * 1000
        for r in requests
        if r.start <= until and r.ok and r.end is not None and t_inject <= r.end <= end
    )
    if not waits:
        assert users.p95_during_fault_ms is None
        return
    assert users.p95_during_fault_ms == pytest.approx(_type7(waits, 0.95), abs=1e-6)
    # one more request, slower than any: the p95 never goes down
    slower = req(t_inject - T0 + 0.5, t_inject - T0 + 0.5 + (max(waits) / 1000) + 1)
    more = measure_users([*requests, slower], t_inject=t_inject, end=end, fault_end=fault_end)
    if more.p95_during_fault_ms is not None and more.rto_s == users.rto_s:
        assert more.p95_during_fault_ms >= users.p95_during_fault_ms - 1e-9
