"""Which probe dates the service's recovery (``measure.recovery.service_recovery``).

Each probe that saw the fault brackets its own recovery: the truth lies in
``[rto - rto_error, rto]``. When every bracket shares a moment (one outage seen by fine
and coarse probes alike), the service came back inside the intersection, so the earliest
healthy answer dates it and the latest bracket start bounds it from below: the finest
probe dates, the coarse ones confirm. Probes already back before the latest bracket
start do not date it (another probe saw a later recovery of its own); every other bracket
holds that start, and the earliest healthy answer among them dates it.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.measure.recovery import Recovery, service_recovery


def recovery(probe: str, rto_s: float, error_s: float, impact: bool = True) -> Recovery:
    return Recovery(
        probe=probe, interval_s=error_s, samples_after_inject=50, impact_seen=impact,
        recovered=True, time_to_detect_s=0.1 if impact else None, rto_s=rto_s if impact else 0.0,
        downtime_s=rto_s, availability=0.5, observed_s=20.0, reason="recovered",
        uncertainty_s=error_s if impact else None,
    )  # fmt: skip


def test_a_fine_probe_dates_what_a_coarse_one_confirms() -> None:
    fine = recovery("post-journal-entry", 3.41, 0.21)  # truth in [3.20, 3.41]
    coarse = recovery("ledger-integrity", 4.05, 1.02)  # truth in [3.03, 4.05]
    combined = service_recovery([fine, coarse])
    assert combined is not None and combined.recovered
    assert combined.rto_s == 3.41 and abs(combined.rto_error_s - 0.21) < 1e-9
    assert combined.probe == "post-journal-entry"
    assert "confirmed by ledger-integrity" in combined.reason


def test_a_later_recovery_seen_by_one_probe_dates_the_service() -> None:
    early = recovery("erp-health", 2.0, 0.2)  # [1.8, 2.0]
    late = recovery("post-journal-entry", 5.0, 0.3)  # [4.7, 5.0]: after erp-health's
    combined = service_recovery([early, late])
    assert combined is not None
    assert combined.rto_s == 5.0 and abs(combined.rto_error_s - 0.3) < 1e-9
    assert combined.probe == "post-journal-entry"


def test_probes_already_back_do_not_date_and_the_rest_share_the_latest_start() -> None:
    """From a game day (database crash): erp-health [2.04, 2.41] was back before
    post-journal-entry could have been [2.43, 2.81]; ledger-integrity [2.04, 3.21] holds
    2.43 too, so it confirms post-journal-entry's recovery rather than dating its own."""
    combined = service_recovery([
        recovery("post-journal-entry", 2.81, 0.38),
        recovery("erp-health", 2.41, 0.37),
        recovery("ledger-integrity", 3.21, 1.17),
    ])  # fmt: skip
    assert combined is not None and combined.probe == "post-journal-entry"
    assert combined.rto_s == 2.81 and abs(combined.rto_error_s - 0.38) < 1e-9
    assert "confirmed by ledger-integrity" in combined.reason
    assert "erp-health" not in combined.reason


def test_a_probe_not_recovered_is_the_answer() -> None:
    stuck = replace(recovery("portal-read", 0, 0), recovered=False, rto_s=None, reason="no")
    combined = service_recovery([recovery("erp-health", 2.0, 0.2), stuck])
    assert combined is stuck


def test_probes_that_saw_nothing_do_not_bound_anything() -> None:
    quiet = recovery("session-cache", 0.0, 0.2, impact=False)
    seen = recovery("erp-health", 2.0, 0.2)
    combined = service_recovery([quiet, seen])
    assert combined is not None and (combined.probe, combined.rto_s) == ("erp-health", 2.0)
    assert abs(combined.rto_error_s - 0.2) < 1e-9
    assert service_recovery([quiet]) == quiet
    assert service_recovery([]) is None


BRACKET = st.tuples(st.floats(0, 30), st.floats(0.01, 3))


@given(st.floats(0.5, 20), st.lists(st.tuples(st.floats(0, 1), st.floats(0.01, 3)), min_size=1,
                                     max_size=5))
def test_one_outage_seen_by_probes_of_any_grain_stays_inside_the_bar(truth, probes) -> None:
    """Probes of different grain, each bracketing the same true recovery: the combined
    bar holds the truth and is never wider than the finest probe's."""
    found = [
        recovery(f"p{i}", truth + share * error, error) for i, (share, error) in enumerate(probes)
    ]
    combined = service_recovery(found)
    assert combined is not None and combined.rto_s is not None
    assert combined.rto_s - combined.rto_error_s - 1e-9 <= truth <= combined.rto_s + 1e-9
    assert combined.rto_error_s <= min(error for _, error in probes) + 1e-9


@given(st.lists(BRACKET, min_size=1, max_size=5))
def test_the_service_is_never_dated_before_a_probe_was_certainly_still_down(brackets) -> None:
    found = [recovery(f"p{i}", rto, error) for i, (rto, error) in enumerate(brackets)]
    combined = service_recovery(found)
    assert combined is not None and combined.rto_s is not None
    latest_start = max(rto - error for rto, error in brackets)
    assert combined.rto_s - combined.rto_error_s >= latest_start - 1e-9
    assert combined.rto_s <= max(rto for rto, _ in brackets) + 1e-9
