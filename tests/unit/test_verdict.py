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
from ledgerdrill.measure.db_loss import database_loss, with_database_witness
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


def test_a_slow_platform_fails_a_p95_during_the_fault_objective_and_says_by_how_much() -> None:
    objective = Objective(rto_s=None, rpo_s=None, p95_during_fault_s=1.0)
    slow = LoadFigures(0.0, 1.0, "", p95_during_fault_ms=2400.0)
    failed = judge(objective, Measurements(steady_state_ok=True, load=slow))
    assert failed.verdict is Verdict.FAIL
    assert any(c.name == "load-p95-during-fault" and "2.40s > 1.00s" in c.text
               for c in failed.checks)  # fmt: skip
    fast = LoadFigures(0.0, 1.0, "", p95_during_fault_ms=380.0)
    assert judge(objective, Measurements(steady_state_ok=True, load=fast)).verdict is Verdict.PASS
    # Locust's per-second counts cannot give it: unmeasured, said, not a pass
    counts = LoadFigures(0.0, 1.0, "")
    unmeasured = judge(objective, Measurements(steady_state_ok=True, load=counts))
    assert unmeasured.verdict is Verdict.INCONCLUSIVE
    assert any("per-second counts" in c.text for c in unmeasured.checks)


# -- what users lived through ------------------------------------------------------------------


def users_figures(  # type: ignore[no-untyped-def]
    rto: float | None,
    stall: float,
    *,
    recovered: bool = True,
    rate: float | None = 0.0,
    wait: float | None = None,
):
    from ledgerdrill.measure.users import UsersFigures

    return UsersFigures(
        requests=50, recovered=recovered, rto_s=rto, rto_error_s=0.1 if rto else None,
        longest_stall_s=stall, longest_wait_s=stall if wait is None else wait, error_rate_during_fault=rate,
        p95_back_to_baseline_s=0.0, requests_lost=0,
        reason="users served again" if recovered else "users not recovered within 20.0s",
    )  # fmt: skip


def test_probes_pass_but_a_users_stall_longer_than_the_rto_fails_and_is_named() -> None:
    """The node-freeze case: the probes recovered in 2.9 s, users waited 9 s."""
    m = Measurements(
        True, recoveries=[recovery("--++++++")], loss=clean_loss(),
        users=users_figures(2.9, 9.0),
    )  # fmt: skip
    j = judge(Objective(rto_s=5, rpo_s=0), m)
    assert j.verdict is Verdict.FAIL
    assert j.reasons == [
        "users' longest stall 9.00s (waiting, nothing getting through) > target RTO 5.00s",
        "users' longest wait 9.00s (one request, from its send or the fault) > target RTO 5.00s",
    ]


def test_one_user_stuck_while_others_are_served_fails_by_the_longest_wait() -> None:
    """Naive Traefik: one user held 9.4 s on the frozen replica, the others served at once
    -- users' RTO (dated by sends) and their stall are short; the wait is not."""
    m = Measurements(
        True, recoveries=[recovery("--++++++")], loss=clean_loss(),
        users=users_figures(0.6, 0.3, wait=9.4),
    )  # fmt: skip
    j = judge(Objective(rto_s=5, rpo_s=0), m)
    assert j.verdict is Verdict.FAIL
    assert j.reasons == [
        "users' longest wait 9.40s (one request, from its send or the fault) > target RTO 5.00s"
    ]
    held = users_figures(0.6, 0.3, wait=2.0)  # hardened: the 2 s response-header timeout
    ok = Measurements(True, recoveries=[recovery("--++++++")], loss=clean_loss(), users=held)
    assert judge(Objective(rto_s=5, rpo_s=0), ok).verdict is Verdict.PASS


def test_users_rto_over_target_fails_and_within_passes() -> None:
    over = Measurements(True, recoveries=[recovery("++++++")], users=users_figures(7.5, 0.4))
    assert judge(Objective(rto_s=5, rpo_s=None), over).reasons == [
        "users' RTO 7.50s ± 0.10s > target 5.00s"
    ]
    within = Measurements(True, recoveries=[recovery("++++++")], users=users_figures(1.5, 0.4))
    assert judge(Objective(rto_s=5, rpo_s=None), within).verdict is Verdict.PASS


def test_users_not_recovered_fails_with_their_reason() -> None:
    m = Measurements(
        True, recoveries=[recovery("++++++")], users=users_figures(None, 3.0, recovered=False)
    )
    j = judge(Objective(rto_s=60, rpo_s=None), m)
    assert j.verdict is Verdict.FAIL
    assert j.reasons == ["users not recovered within 20.0s (target 1m00s)"]


def test_rto_measured_by_chooses_the_witness() -> None:
    m = Measurements(True, recoveries=[recovery("-" * 30 + "+" * 5)], users=users_figures(0.5, 0.2))
    assert judge(Objective(rto_s=5, rpo_s=None, rto_measured_by="users"), m).verdict is Verdict.PASS
    assert judge(Objective(rto_s=5, rpo_s=None, rto_measured_by="probes"), m).verdict is (
        Verdict.FAIL
    )
    assert judge(Objective(rto_s=5, rpo_s=None), m).verdict is Verdict.FAIL  # both


def test_no_load_is_judged_by_the_probes_unless_users_are_required() -> None:
    m = Measurements(True, recoveries=[recovery("--++++++")])
    assert judge(Objective(rto_s=5, rpo_s=None), m).verdict is Verdict.PASS
    j = judge(Objective(rto_s=5, rpo_s=None, rto_measured_by="users"), m)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert j.reasons == ["users' RTO not measured: no load ran"]


def test_the_error_rate_comes_from_the_per_request_record_when_there_is_one() -> None:
    m = Measurements(
        True, recoveries=[recovery("++++++")], load=LoadFigures(0.0, 0.0),
        users=users_figures(0.0, 0.1, rate=0.33),
    )  # fmt: skip
    j = judge(Objective(rto_s=None, rpo_s=None, max_error_rate_during_fault=0.05), m)
    assert j.verdict is Verdict.FAIL
    assert j.reasons == ["error rate during the fault 33.0% > 5.0%"]


def test_a_censored_rpo_never_passes_a_target_it_could_exceed() -> None:
    """The canary's first write lost: the RPO is a lower bound. Within the target it
    proves nothing (INCONCLUSIVE, said why); already over the target it fails."""
    writes = [Write(r, WriteOutcome.OK, at(t), at(t + 0.01)) for r, t in (("a", 1), ("b", 2))]
    loss = measure_loss(writes, {}, at(3))  # both lost, the first among them
    assert loss.rpo_censored
    within = judge(Objective(rto_s=None, rpo_s=300), Measurements(True, loss=loss))
    assert within.verdict is Verdict.INCONCLUSIVE
    assert "RPO ≥ 1.99s" in within.reasons[0] and "may reach back further" in within.reasons[0]
    over = judge(Objective(rto_s=None, rpo_s=1), Measurements(True, loss=loss))
    assert over.verdict is Verdict.FAIL and "RPO ≥ 1.99s" in over.reasons[0]


def test_the_database_witness_fails_a_target_the_canary_alone_would_pass() -> None:
    """Issue 32: the canary kept every write, the database lost 7 s of other writers'
    commits at the promotion: the RPO is the database's, named, and the target fails."""
    writes = [Write(r, WriteOutcome.OK, at(t), at(t + 0.01)) for r, t in (("a", 1), ("b", 2))]
    canary = measure_loss(writes, {"a": 1, "b": 1}, at(3))
    db = database_loss(
        "dr-db",
        {"old_primary": "db-a", "promoted_was_sync_standby": False,
         "last_replayed_commit": "2026-12-07T12:00:00+00:00", "lost_commits": 35,
         "first_lost_commit": "2026-12-07T12:00:00.2+00:00",
         "newest_lost_commit": "2026-12-07T12:00:07+00:00"},
    )  # fmt: skip
    loss = with_database_witness(canary, [db])
    judged = judge(Objective(rto_s=None, rpo_s=5), Measurements(True, loss=loss))
    assert judged.verdict is Verdict.FAIL
    assert "RPO 7.00s by the database" in judged.reasons[0], judged.reasons
    assert "canary writes lost of 2 acknowledged; the canary alone saw 0.00s" in judged.reasons[0]
    assert judge(Objective(rto_s=None, rpo_s=5), Measurements(True, loss=canary)).verdict is (
        Verdict.PASS
    )
