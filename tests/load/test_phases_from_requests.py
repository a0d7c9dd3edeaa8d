"""Per-phase load figures from the per-request record (each request's own times), and the
witness: every request is counted in exactly one phase, the one its answer fell in."""

from __future__ import annotations

import datetime as dt
import math

from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.load.model import LoadResult, SecondStats
from ledgerdrill.load.phases import summarise
from ledgerdrill.measure.users import UserRequest

ORIGIN = 1_000.0  # epoch of the load's first second


def result(seconds: int) -> LoadResult:
    at = [dt.datetime.fromtimestamp(ORIGIN + t, tz=dt.UTC) for t in range(seconds)]
    rows = [SecondStats(t_s=t, at=at[t], requests=0, failures=0) for t in range(seconds)]
    return LoadResult(profile="p", started_at=at[0], started_epoch_s=ORIGIN, seconds=rows,
                      requests=0, failures=0, ended_by="stop", duration_s=float(seconds))  # fmt: skip


def test_a_request_counts_where_its_answer_fell_not_by_its_bucket() -> None:
    # a bucket midpoint rule put the whole second [12, 13) in "recovery" when recovery
    # began at 12.4; the answers at 12.1 and 12.3 belong to the fault
    requests = [
        UserRequest(ORIGIN + 1.0, ORIGIN + 1.05, "ok"),
        UserRequest(ORIGIN + 11.0, ORIGIN + 12.1, "error"),
        UserRequest(ORIGIN + 12.0, ORIGIN + 12.3, "ok"),
        UserRequest(ORIGIN + 12.5, ORIGIN + 12.6, "ok"),
        UserRequest(ORIGIN + 13.0, None, None),  # never answered: counted where it was sent
    ]
    summary = summarise(result(20), 10.0, 12.4, t_post_recovery_s=15.0, requests=requests,
                        origin_epoch_s=ORIGIN)  # fmt: skip
    by_phase = {p.phase: p for p in summary.phases}
    assert by_phase["baseline"].requests == 1
    assert (by_phase["fault"].requests, by_phase["fault"].failures) == (2, 1)
    assert (by_phase["recovery"].requests, by_phase["recovery"].failures) == (2, 1)
    assert by_phase["post-recovery"].requests == 0
    assert summary.phases_source == "requests"
    assert by_phase["fault"].p95_ms is not None and by_phase["fault"].p95_ms > 1000


times = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)


@given(
    st.lists(st.tuples(times, st.floats(min_value=0.0, max_value=5.0), st.booleans()),
             max_size=60),
    times, st.floats(min_value=0.0, max_value=10.0), st.floats(min_value=0.0, max_value=10.0),
)  # fmt: skip
def test_every_request_is_in_exactly_one_phase(
    rows: list[tuple[float, float, bool]], inject: float, to_recovery: float, to_post: float
) -> None:
    # the load's origin at 0 here: the witness below then compares the very same floats
    # (an origin added and taken away again rounds at the bounds)
    requests = [UserRequest(s, s + d, "ok" if ok else "error") for s, d, ok in rows]
    recovered, post = inject + to_recovery, inject + to_recovery + to_post
    summary = summarise(result(40), inject, recovered, t_post_recovery_s=post,
                        requests=requests, origin_epoch_s=0.0)  # fmt: skip
    assert summary.requests == len(requests)
    assert summary.failures == sum(1 for *_, ok in rows if not ok)
    # the independent count: by the answer's time against the phase bounds
    fault = sum(1 for s, d, _ in rows if inject <= s + d < recovered)
    assert next(p for p in summary.phases if p.phase == "fault").requests == fault
    for phase in summary.phases:
        if phase.requests:
            assert phase.p50_ms is not None and phase.p95_ms is not None
            assert phase.p50_ms <= phase.p95_ms <= (phase.p99_ms or math.inf)
