"""RTO, time to detect and downtime, from the definitions in docs/architecture.md."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import assume, given
from hypothesis import strategies as st

from ledgerdrill.measure import StabilityWindow, measure_recovery
from ledgerdrill.timeline import NS_PER_S, Instant, Sample

T0 = datetime(2026, 1, 31, tzinfo=UTC)


def at(seconds: float) -> Instant:
    return Instant(round(seconds * NS_PER_S), T0)


LATENCY_S = 0.01


def stream(pattern: str, interval_s: float = 0.2, start_s: float = 0.0) -> list[Sample]:
    """'+' healthy, '-' failed, one sample per interval from start_s."""
    return [
        Sample("svc", at(start_s + i * interval_s), ch == "+", LATENCY_S)
        for i, ch in enumerate(pattern)
    ]


WINDOW = StabilityWindow(min_samples=5, min_duration_s=0.8)


def test_simple_outage_measures_first_healthy_sample_of_final_run() -> None:
    samples = stream("+++-----++++++++++", interval_s=0.2)
    rec = measure_recovery(samples, at(0.6), interval_s=0.2, window=WINDOW)
    assert rec.recovered
    assert rec.time_to_detect_s == 0.0
    # first healthy sample sent at 1.6 s, answered LATENCY_S later
    assert abs((rec.rto_s or 0) - (1.0 + LATENCY_S)) < 1e-9
    assert abs(rec.rto_error_s - (0.2 + LATENCY_S)) < 1e-9  # last failed send -> that answer
    assert abs(rec.downtime_s - (1.0 + LATENCY_S)) < 1e-9
    assert "recovered" in rec.reason


def test_flap_after_apparent_recovery_moves_recovery_later() -> None:
    samples = stream("+---+++--++++++++", interval_s=0.2)
    rec = measure_recovery(samples, at(0.2), interval_s=0.2, window=WINDOW)
    assert rec.recovered
    # run starting at 1.8 s (answered LATENCY_S later), inject at 0.2 s
    assert abs((rec.rto_s or 0) - (1.6 + LATENCY_S)) < 1e-9


def test_never_degrading_probe_has_rto_zero() -> None:
    rec = measure_recovery(stream("+" * 10), at(0.0), interval_s=0.2, window=WINDOW)
    assert rec.recovered
    assert rec.rto_s == 0.0
    assert not rec.impact_seen
    assert rec.reason == "no impact seen"


def test_still_failing_is_a_timeout_not_a_recovery_time() -> None:
    samples = [*stream("+" * 40), *stream("-" * 150, start_s=8.0)]  # watched 30 s in all
    rec = measure_recovery(samples, at(0.2), interval_s=0.2, timeout_s=30)
    assert not rec.recovered
    assert rec.rto_s is None
    assert rec.reason.startswith("not recovered within 30.0s")


def test_a_reason_states_the_time_actually_watched_and_what_was_last_seen() -> None:
    """Issue 29: a drill whose observation ended after ~1 s (its revert began) must not
    say "not recovered within 30s"; it says what it watched and the last failure seen."""
    samples = stream("++------")
    samples[-1] = Sample("svc", samples[-1].at, False, LATENCY_S, "HTTP 502 from the gateway")
    rec = measure_recovery(samples, at(0.2), interval_s=0.2, timeout_s=30)
    assert rec.reason == (
        "not recovered in the 1.2s observed (observation ended before the 30.0s recovery"
        " timeout) (still failing when observation ended; last seen: HTTP 502 from the gateway)"
    )


def test_short_final_run_is_not_a_recovery() -> None:
    rec = measure_recovery(stream("+---++"), at(0.2), interval_s=0.2, window=WINDOW)
    assert not rec.recovered
    assert "stability window" in rec.reason


def test_recovery_after_timeout_does_not_count() -> None:
    rec = measure_recovery(
        stream("+" + "-" * 20 + "+" * 10), at(0.2), interval_s=0.2, window=WINDOW, timeout_s=2.0
    )
    assert not rec.recovered
    assert rec.rto_s is None
    assert "not recovered within 2.0s" in rec.reason


def test_no_samples_after_injection_is_missing_data() -> None:
    rec = measure_recovery(stream("+++"), at(5.0), interval_s=0.2)
    assert not rec.has_data
    assert not rec.recovered


def test_failures_before_injection_are_ignored() -> None:
    rec = measure_recovery(stream("---+++++++++"), at(0.6), interval_s=0.2, window=WINDOW)
    assert rec.rto_s == 0.0
    assert not rec.impact_seen


@given(
    interval=st.sampled_from([0.05, 0.1, 0.2, 0.5]),
    phase=st.floats(0, 1, allow_nan=False),
    outage_start=st.floats(0, 3, allow_nan=False),
    outage=st.floats(0.01, 10, allow_nan=False),
)
def test_rto_within_one_interval_of_true_outage(
    interval: float, phase: float, outage_start: float, outage: float
) -> None:
    """For a true outage [a, a+d) after injection, sampled every interval: if the probe saw
    it, the RTO is never less than the true outage end minus one interval, nor more than
    the end plus one interval."""
    t_inject = 1.0
    true_end = outage_start + outage
    n = int((true_end + 5) / interval) + 10
    samples = [
        Sample(
            "svc",
            at(t_inject + phase * interval + k * interval - 1.0),
            not (outage_start <= phase * interval + k * interval - 1.0 < true_end),
            0.0,
        )
        for k in range(n)
    ]
    rec = measure_recovery(samples, at(t_inject), interval_s=interval, window=WINDOW)
    assert rec.recovered
    assert rec.rto_s is not None
    assert rec.rto_s >= 0
    if rec.impact_seen:
        assert rec.rto_s >= true_end - interval - 1e-9
        assert rec.rto_s <= true_end + interval + 1e-9
        assert rec.downtime_s <= outage + interval + 1e-9
        assert rec.downtime_s >= outage - interval - 1e-9
    else:
        assert outage < interval + 1e-9  # only an outage shorter than one interval can hide


@given(
    pattern=st.text(alphabet="+-", min_size=1, max_size=60),
    inject_index=st.integers(0, 59),
    shift_ns=st.integers(-(10**15), 10**15),
)
def test_rto_never_negative_and_shift_invariant(
    pattern: str, inject_index: int, shift_ns: int
) -> None:
    assume(inject_index < len(pattern))
    base_samples = stream(pattern)
    t_inject = at(inject_index * 0.2)
    base = measure_recovery(base_samples, t_inject, interval_s=0.2, window=WINDOW)
    # shift every instant by the same exact number of nanoseconds
    moved_samples = [
        Sample(s.probe, Instant(s.at.mono_ns + shift_ns, T0), s.ok, s.latency_s)
        for s in base_samples
    ]
    moved = measure_recovery(
        moved_samples, Instant(t_inject.mono_ns + shift_ns, T0), interval_s=0.2, window=WINDOW
    )
    assert base.rto_s is None or base.rto_s >= 0
    assert base.recovered == moved.recovered
    assert base.impact_seen == moved.impact_seen
    if base.rto_s is not None:
        assert moved.rto_s is not None
        assert abs(base.rto_s - moved.rto_s) < 1e-6
    if base.recovered:
        assert pattern.endswith("+")


@given(pattern=st.text(alphabet="+", min_size=1, max_size=40))
def test_stream_without_failures_gives_rto_zero(pattern: str) -> None:
    rec = measure_recovery(stream(pattern), at(0.0), interval_s=0.2)
    assert rec.rto_s == 0.0
    assert rec.downtime_s == 0.0
    assert rec.availability == 1.0


def test_a_request_sent_during_the_outage_and_answered_after_it_dates_the_recovery() -> None:
    # the service hangs from 1.0 s to 2.0 s; the sample sent at 1.9 s waits and is
    # answered at 2.002 s: the recovery is then, not when the request was sent
    samples = [Sample("svc", at(t / 10), not 10 <= t < 19, 0.002) for t in range(0, 19)]
    samples.append(Sample("svc", at(1.9), True, 0.102))
    samples += [Sample("svc", at(t / 10), True, 0.002) for t in range(20, 40)]
    rec = measure_recovery(samples, at(1.0), interval_s=0.1, window=WINDOW)
    assert rec.recovered
    assert abs((rec.rto_s or 0) - 1.002) < 1e-9


@given(
    interval=st.sampled_from([0.05, 0.1, 0.2, 0.5]),
    timeout=st.sampled_from([0.1, 0.5, 1.0, 2.0]),
    outage_start=st.floats(0, 3, allow_nan=False),
    outage=st.floats(0.01, 10, allow_nan=False),
    queued=st.booleans(),
)
def test_the_true_recovery_lies_inside_the_error_bar(
    interval: float, timeout: float, outage_start: float, outage: float, queued: bool
) -> None:
    """Samples sent every interval, overlapping. During a true outage [a, b) a sample
    either fails at once (refused) or -- a frozen server that holds its connections --
    waits: answered at b if b comes before its timeout, else failed at the timeout. The
    truth, b, lies in [rto - rto_error, rto] whenever the probe saw the outage."""
    true_end = outage_start + outage
    samples = []
    for k in range(int((true_end + 5) / interval) + 10):
        sent = k * interval
        if not outage_start <= sent < true_end:
            samples.append(Sample("svc", at(sent), True, LATENCY_S))
        elif queued and true_end - sent < timeout:
            samples.append(Sample("svc", at(sent), True, true_end - sent))
        else:
            samples.append(Sample("svc", at(sent), False, timeout if queued else 0.0))
    rec = measure_recovery(samples, at(0.0), interval_s=interval, window=WINDOW)
    assert rec.recovered and rec.rto_s is not None
    if rec.impact_seen:
        assert rec.rto_s - rec.rto_error_s - 1e-6 <= true_end <= rec.rto_s + 1e-6
        # the bar: one interval (and the answer's latency), plus the wait where samples
        # sent during the outage's last timeout were held, not failed
        assert rec.rto_error_s <= interval + LATENCY_S + (timeout if queued else 0) + 1e-6


def test_detection_is_bracketed_by_the_last_healthy_answer_and_the_first_failed_send() -> None:
    samples = stream("+++-----++++++++++", interval_s=0.2)
    rec = measure_recovery(samples, at(0.1), interval_s=0.2, window=WINDOW)
    # first failure sent at 0.6; the last healthy (sent 0.4) answered at 0.41
    assert abs((rec.time_to_detect_s or 0) - 0.5) < 1e-9
    assert abs((rec.detect_error_s or 0) - (0.6 - 0.41)) < 1e-9
    # the fault cannot be visible before it was injected: the bracket starts there
    late_inject = measure_recovery(samples, at(0.5), interval_s=0.2, window=WINDOW)
    assert abs((late_inject.detect_error_s or 0) - 0.1) < 1e-9
    quiet = measure_recovery(stream("+++++++"), at(0.1), interval_s=0.2, window=WINDOW)
    assert quiet.detect_error_s is None and quiet.time_to_detect_s is None
