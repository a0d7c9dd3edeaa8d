from __future__ import annotations

from datetime import UTC, datetime

from ledgerdrill.measure import (
    LoadFigures,
    Measurements,
    Objective,
    Verdict,
    Write,
    WriteOutcome,
    fmt_s,
    judge,
    measure_loss,
    measure_recovery,
)
from ledgerdrill.measure.recovery import StabilityWindow
from ledgerdrill.timeline import NS_PER_S, Instant, Sample

T0 = datetime(2026, 1, 31, tzinfo=UTC)


def at(s: float) -> Instant:
    return Instant(round(s * NS_PER_S), T0)


def recovery(pattern: str, timeout_s: float | None = None):  # type: ignore[no-untyped-def]
    samples = [Sample("svc", at(i * 0.2), c == "+", 0.0) for i, c in enumerate(pattern)]
    return measure_recovery(
        samples, at(0.0), interval_s=0.2, window=StabilityWindow(3, 0.4), timeout_s=timeout_s
    )


def clean_loss():  # type: ignore[no-untyped-def]
    return measure_loss([Write("a", WriteOutcome.OK, at(0), at(0.1))], {"a": 1}, at(1))


def test_pass_when_every_measurement_meets_target() -> None:
    m = Measurements(True, recoveries=[recovery("--++++++")], loss=clean_loss())
    j = judge(Objective(rto_s=5, rpo_s=0), m)
    assert j.verdict is Verdict.PASS
    assert any("RTO 0.40s" in r for r in j.reasons)


def test_fail_on_rto_miss_names_it() -> None:
    m = Measurements(True, recoveries=[recovery("-" * 10 + "+" * 5)], loss=clean_loss())
    j = judge(Objective(rto_s=1, rpo_s=0), m)
    assert j.verdict is Verdict.FAIL
    assert j.reasons == ["RTO 2.00s ± 0.20s (probe svc) > target 1.00s"]


def test_timeout_fails_and_is_not_a_time() -> None:
    j = judge(Objective(rto_s=60, rpo_s=None), Measurements(True, recoveries=[recovery("+----")]))
    assert j.verdict is Verdict.FAIL
    assert "not recovered within" in j.reasons[0]


def test_lost_write_fails_zero_rpo() -> None:
    loss = measure_loss([Write("a", WriteOutcome.OK, at(0), at(0.1))], {}, at(1))
    j = judge(Objective(rto_s=None, rpo_s=0), Measurements(True, loss=loss))
    assert j.verdict is Verdict.FAIL
    assert "1 acknowledged writes lost" in j.reasons[0]


def test_steady_state_failure_is_inconclusive_not_fail() -> None:
    j = judge(Objective(1, 0), Measurements(False, "probe svc failing"))
    assert j.verdict is Verdict.INCONCLUSIVE
    assert "probe svc failing" in j.reasons[0]


def test_missing_data_is_inconclusive_but_a_known_miss_still_fails() -> None:
    assert judge(Objective(5, 0), Measurements(True, recoveries=[recovery("+")])).verdict is (
        Verdict.INCONCLUSIVE
    )
    m = Measurements(True, recoveries=[recovery("-" * 20 + "+++")])
    assert judge(Objective(1, 0), m).verdict is Verdict.FAIL


def test_duplicates_fail_even_without_rpo_objective() -> None:
    loss = measure_loss([Write("a", WriteOutcome.OK, at(0), at(0.1))], {"a": 2}, at(1))
    j = judge(Objective(None, None), Measurements(True, loss=loss))
    assert j.verdict is Verdict.FAIL
    assert "posted more than once" in j.reasons[0]


def test_fmt_s() -> None:
    assert [fmt_s(x) for x in (0.843, 12.34, 245, 5400)] == ["0.84s", "12.3s", "4m05s", "1h30m"]


def test_load_criteria_join_the_verdict() -> None:
    objective = Objective(
        rto_s=None, rpo_s=None, max_error_rate_during_fault=0.05, p95_back_to_baseline_within_s=30
    )
    good = LoadFigures(error_rate_during_fault=0.01, p95_back_after_s=12.0)
    assert judge(objective, Measurements(steady_state_ok=True, load=good)).verdict is Verdict.PASS
    errors = LoadFigures(error_rate_during_fault=0.2, p95_back_after_s=12.0)
    failed = judge(objective, Measurements(steady_state_ok=True, load=errors))
    assert failed.verdict is Verdict.FAIL
    assert any("20.0% > 5.0%" in c.text for c in failed.checks)
    never = LoadFigures(0.0, None, "still 3x baseline at the end")
    assert judge(objective, Measurements(steady_state_ok=True, load=never)).verdict is Verdict.FAIL
    # a load criterion without load is not a pass: it is unmeasured
    missing = judge(objective, Measurements(steady_state_ok=True))
    assert missing.verdict is Verdict.INCONCLUSIVE
    assert all(c.passed is None for c in missing.checks)
