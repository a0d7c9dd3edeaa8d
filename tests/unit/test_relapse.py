"""A relapse: a probe that fails again after the drill saw the platform recovered.

Definition (``ledgerdrill.measure.recovery.relapse``): the first failed sample taken at
or after the moment recovery was observed and before observation ended; none when every
such sample is healthy. The RTO itself already counts to the final stable recovery (the
start of the trailing healthy run), so a relapse moves it later.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_recovery import T0, at, stream

from ledgerdrill.measure import StabilityWindow, measure_recovery
from ledgerdrill.measure.recovery import relapse
from ledgerdrill.timeline import NS_PER_S, Instant, Sample

WINDOW = StabilityWindow(min_samples=5, min_duration_s=0.8)


def test_a_failure_after_the_observed_recovery_is_a_relapse_and_moves_the_rto_later() -> None:
    # down 0-1 s, healthy 1-3 s (seen recovered at 2 s), down again 3-3.6 s, then healthy
    samples = stream("-----" + "++++++++++" + "---" + "++++++++")
    found = relapse(samples, recovered_seen=at(2.0), end=at(6.0))
    assert found is not None
    assert found.probe == "svc" and found.at == at(3.0)
    assert found.after_recovery_s == 1.0
    recovery = measure_recovery(samples, at(0.0), interval_s=0.2, window=WINDOW, end=at(6.0))
    assert recovery.recovered and abs(recovery.rto_s - 3.61) < 1e-6  # the final recovery


def test_failures_before_the_observed_recovery_or_after_the_end_are_not_relapses() -> None:
    samples = stream("-----" + "++++++++++" + "---")
    assert relapse(samples, recovered_seen=at(1.0), end=at(3.0)) is None
    assert relapse(samples, recovered_seen=at(1.0), end=at(3.6)) is not None


@given(st.text(alphabet="+-", max_size=60), st.integers(0, 60), st.integers(0, 60))
def test_the_relapse_is_the_earliest_failed_sample_in_the_window(
    pattern: str, seen_at: int, end_at: int
) -> None:
    samples = stream(pattern)
    seen, end = at(seen_at * 0.2), at(end_at * 0.2)
    failed = [s for s in samples if not s.ok and seen.mono_ns <= s.at.mono_ns < end.mono_ns]
    found = relapse(samples, recovered_seen=seen, end=end)
    if not failed:
        assert found is None
    else:
        assert found is not None and found.at == failed[0].at


def test_samples_out_of_order_are_read_in_time_order() -> None:
    late = Sample("svc", Instant(5 * NS_PER_S, T0), False, 0.01)
    early = Sample("svc", Instant(4 * NS_PER_S, T0), False, 0.01)
    found = relapse([late, early], recovered_seen=at(3.0), end=at(9.0))
    assert found is not None and found.at == early.at
