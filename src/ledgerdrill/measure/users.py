"""What users lived through, from the load's per-request record (not per-second buckets).

Each request is ``(start, end, outcome)`` in epoch seconds: when it was sent, when its
answer (or its failure) came, and what it was. A request with no ``end`` never finished
(still waiting when the load stopped). Figures are for one scenario, observed over
``[t_inject, end]``:

- **waiting**: a request waits from its start until its end (or until the end of
  observation). A hung request is waiting, whether or not it ever fails.
- **stall**: a stretch of time in which at least one user was waiting and no request
  was answered successfully. ``longest_stall_s`` is the longest; a stall may end with a
  success, a failure, or the end of observation.
- **users' recovery** (``rto_s``): the probes' rule applied to users' requests, taken
  in the order they were sent. A request is *trouble* when it failed, or when its user
  waited at least ``stall_threshold_s`` for it (a frozen replica holds what is routed
  to it, even while others are served); a trouble is dated by its send, as a probe's
  failed sample is -- a request sent at 0.3 s into a frozen replica and answered 504 at
  2.3 s says the platform could not serve at 0.3 s, not at 2.3 s. A stall of at least
  ``stall_threshold_s`` (users waiting, nobody served) is trouble until its end. Users
  are served again at the answer of the first successful request sent after the last
  troubled send and answered at or after the last long stall, provided successes then
  last the stability window (``min_samples`` answers over ``min_duration_s``). A
  request still waiting at the end of observation after at least the threshold means
  users are not recovered: that user is stuck still. No trouble after the fault: 0
  ("no impact seen by users"). How long the unluckiest user waited is
  ``longest_wait_s``, judged against the tier's RTO on its own.
- ``rto_error_s``: where the true moment lies: after the last troubled send (the
  platform failed a request sent then) or, when a long stall ended last, after the
  latest request event before that stall's end; and before the recovering answer.
- ``error_rate_during_fault``: requests answered as failures, plus requests never
  answered, over all requests answered or never answered that were sent in the fault
  window ``[t_inject, recovery]`` (by their send, as trouble is dated; recovery: the
  later of the users' and ``fault_end``), which lasts at least one stability window (a
  rate over the handful of requests of a sub-second recovery would be noise).
- ``p95_during_fault_ms``: how slow the service was for the users it served in the fault
  window: the 95th percentile (interpolated, ``_percentile``) of the response times of
  the successful requests among those the error rate counts (sent by the window's end,
  answered during observation). A degradation that keeps serving (a slow link) is judged
  by it; failures and requests never answered are the error rate's (an outage's requests
  failing after a 2 s timeout would otherwise make every outage a latency failure too).
- ``p95_back_to_baseline_s``: from the users' recovery to the start of the first
  ``p95_stable_windows`` consecutive one-second windows whose p95 response time
  (interpolated between ranks, not the nearest rank: see ``_percentile``) is
  within ``max(p95 x (1 + tolerance), p95 + tolerance_ms)`` of the baseline's (the
  successful requests answered before the fault). In a window, a request still
  waiting at its end counts with its wait so far; a window with no answer and nobody
  waiting neither breaks nor extends the run.
- a request **abandoned** (its user stopped by the load itself, a ramp-down between
  stages) ended when it was stopped: its wait counts as any wait does, but it is not a
  failure, not lost, and in no error rate.
- ``requests_lost``: sent and never answered -- the connection dropped or timed out
  after sending, or never finished at all -- among requests of the window.

A figure that cannot be measured (no requests at all, no baseline) is ``None`` with its
reason in ``absent``; it is never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ledgerdrill.measure.recovery import StabilityWindow

# "abandoned": the load itself stopped the user while it waited (a ramp-down between
# stages): the request ended then, unanswered through no fault of the platform -- its wait
# counts (a long one is trouble), but it is neither a failure nor lost
Outcome = Literal["ok", "error", "unanswered", "not-sent", "abandoned"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "unanswered", "not-sent", "abandoned")
FAILED: frozenset[str] = frozenset({"error", "unanswered", "not-sent"})


@dataclass(frozen=True)
class UserRequest:
    """One request as a user lived it. ``end``/``outcome`` are None while it waits."""

    start: float
    end: float | None
    outcome: Outcome | None
    # the load's stage when it was recorded, and the Locust process that sent it (a
    # distributed run has several): who was doing what, not part of any figure
    stage: int | None = None
    process: int | None = None

    def __post_init__(self) -> None:
        if (self.end is None) != (self.outcome is None):
            raise ValueError("a request has both an end and an outcome, or neither")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"request answered at {self.end} before it was sent at {self.start}")

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def failed(self) -> bool:
        """Answered as a failure, or never answered: not ok, and not abandoned."""
        return self.outcome in FAILED

    def waiting_until(self, end: float) -> float:
        """When it stopped waiting, as seen at the end of observation ``end``."""
        return end if self.end is None else min(self.end, end)


@dataclass(frozen=True)
class UsersFigures:
    requests: int  # requests waiting at some moment of [t_inject, end]
    recovered: bool | None
    rto_s: float | None
    rto_error_s: float | None
    longest_stall_s: float | None
    longest_wait_s: float | None
    error_rate_during_fault: float | None
    p95_back_to_baseline_s: float | None
    requests_lost: int
    reason: str  # about the users' recovery, as a reader would say it
    baseline_p95_ms: float | None = None
    p95_during_fault_ms: float | None = None
    absent: dict[str, str] = field(default_factory=dict)  # figure -> why it is None
    # stalls of at least the threshold, as (from, to) seconds since the fault (first 50)
    stalls: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Stall:
    start: float
    end: float
    ended_by: Literal["success", "failure", "end of observation"]

    @property
    def length_s(self) -> float:
        return self.end - self.start


def stalls(requests: Iterable[UserRequest], start: float, end: float) -> list[Stall]:
    """Every stretch of ``[start, end]`` in which someone waited and nothing succeeded."""
    spans = sorted(
        (max(r.start, start), r.waiting_until(end))
        for r in requests
        if r.start < end and r.waiting_until(end) > start
    )
    successes = sorted(
        r.end for r in requests if r.ok and r.end is not None and start < r.end <= end
    )
    found: list[Stall] = []
    index = 0
    while index < len(spans):
        # one connected stretch of waiting: [a, b]
        a, b = spans[index]
        index += 1
        while index < len(spans) and spans[index][0] <= b:
            b = max(b, spans[index][1])
            index += 1
        cut = a
        for success in successes:
            if a < success <= b:
                found.append(Stall(cut, success, "success"))
                cut = success
        if b > cut:
            # the stretch ends with the last waiting request's answer: not a success
            # (that would have been a cut), so a failure -- or observation ends first
            ended_by: Literal["failure", "end of observation"]
            ended_by = "end of observation" if b >= end else "failure"
            found.append(Stall(cut, b, ended_by))
    return [s for s in found if s.length_s > 0]


def answered_ok(requests: Iterable[UserRequest], start: float, end: float) -> list[float]:
    """When successful answers arrived in ``(start, end]``."""
    return [r.end for r in requests if r.ok and r.end is not None and start < r.end <= end]


def measure_users(
    requests: Sequence[UserRequest],
    *,
    t_inject: float,
    end: float,
    fault_end: float | None = None,
    window: StabilityWindow | None = None,
    stall_threshold_s: float = 1.0,
    p95_tolerance: float = 0.5,
    p95_tolerance_ms: float = 25.0,
    p95_stable_windows: int = 3,
) -> UsersFigures:
    """The users' figures of one scenario (see the module's definitions)."""
    if end < t_inject:
        raise ValueError(f"observation ends at {end}, before the fault at {t_inject}")
    window = window or StabilityWindow()
    absent: dict[str, str] = {}
    seen = [r for r in requests if r.start < end and r.waiting_until(end) >= t_inject]
    lost = sum(1 for r in seen if r.outcome == "unanswered" or r.end is None)
    baseline = sorted(
        (r.end - r.start) * 1000
        for r in requests
        if r.ok and r.end is not None and r.end < t_inject
    )
    baseline_p95 = _percentile(baseline, 0.95)
    if not seen:
        why = "no user request was in flight after the fault"
        names = [
            "recovered", "rto_s", "rto_error_s", "longest_stall_s", "longest_wait_s",
            "error_rate_during_fault", "p95_back_to_baseline_s", "p95_during_fault_ms",
        ]  # fmt: skip
        return UsersFigures(
            requests=0, recovered=None, rto_s=None, rto_error_s=None, longest_stall_s=None,
            longest_wait_s=None, error_rate_during_fault=None, p95_back_to_baseline_s=None,
            requests_lost=0, reason=why, baseline_p95_ms=baseline_p95,
            absent=dict.fromkeys(names, why),
        )  # fmt: skip
    found = stalls(seen, t_inject, end)
    longest_stall = max((s.length_s for s in found), default=0.0)
    longest_wait = max(r.waiting_until(end) - max(r.start, t_inject) for r in seen)
    recovered, rto, rto_error, reason = _recovery(
        seen, found, t_inject, end=end, window=window, stall_threshold_s=stall_threshold_s
    )
    if not recovered:
        absent["rto_s"] = absent["rto_error_s"] = reason
    until = _fault_window_end(t_inject, end=end, rto=rto, fault_end=fault_end, window=window)
    during = _in_fault_window(seen, t_inject, end=end, until=until)
    rate = _error_rate(during)
    if rate is None:
        absent["error_rate_during_fault"] = "no request was answered during the fault"
    served = sorted((r.waiting_until(end) - r.start) * 1000 for r in during if r.ok)
    p95_during = _percentile(served, 0.95)
    if p95_during is None:
        absent["p95_during_fault_ms"] = "no request succeeded during the fault"
    back: float | None = None
    if baseline_p95 is None:
        absent["p95_back_to_baseline_s"] = "no successful request before the fault to compare with"
    elif rto is None:
        absent["p95_back_to_baseline_s"] = "users did not recover"
    else:
        limit = max(baseline_p95 * (1 + p95_tolerance), baseline_p95 + p95_tolerance_ms)
        back = _p95_back(seen, t_inject + rto, end, limit, p95_stable_windows)
        if back is None:
            absent["p95_back_to_baseline_s"] = (
                f"p95 not within {limit:.0f} ms for {p95_stable_windows} one-second windows"
                " in a row before observation ended"
            )
    return UsersFigures(
        requests=len(seen),
        recovered=recovered,
        rto_s=rto,
        rto_error_s=rto_error,
        longest_stall_s=longest_stall,
        longest_wait_s=longest_wait,
        error_rate_during_fault=rate,
        p95_back_to_baseline_s=back,
        requests_lost=lost,
        reason=reason,
        baseline_p95_ms=baseline_p95,
        p95_during_fault_ms=p95_during,
        absent=absent,
        stalls=[
            (x.start - t_inject, x.end - t_inject) for x in found if x.length_s >= stall_threshold_s
        ][:50],
    )


def _recovery(
    seen: Sequence[UserRequest],
    found: Sequence[Stall],
    t_inject: float,
    *,
    end: float,
    window: StabilityWindow,
    stall_threshold_s: float,
) -> tuple[bool, float | None, float | None, str]:
    troubled = [r for r in seen if _is_trouble(r, t_inject, end, stall_threshold_s)]
    long_stalls = [s.end for s in found if s.length_s >= stall_threshold_s]
    if not troubled and not long_stalls:
        return True, 0.0, 0.0, "no impact seen by users"
    still_stuck = [r for r in troubled if r.end is None or r.end > end]
    if still_stuck:
        waited = max(end - max(r.start, t_inject) for r in still_stuck)
        return (
            False,
            None,
            None,
            (
                f"users not recovered within {end - t_inject:.1f}s (a request still waiting"
                f" when observation ended, for {waited:.1f}s)"
            ),
        )
    # a troubled request is dated by its send (the probes' rule), never before the fault
    last_send = max((max(r.start, t_inject) for r in troubled), default=-math.inf)
    last_stall = max(long_stalls, default=-math.inf)
    trouble = "failed or kept waiting" if last_send >= last_stall else "stalled"
    recovery = min(
        (
            r.end
            for r in seen
            if r.ok and r.end is not None and r.start > last_send and last_stall <= r.end <= end
        ),
        default=None,
    )
    if recovery is None:
        return (
            False,
            None,
            None,
            (
                f"users not recovered within {end - t_inject:.1f}s (no request sent after"
                f" the last that {trouble} was answered successfully)"
            ),
        )
    run = [r.end for r in seen if r.ok and r.end is not None and recovery <= r.end <= end]
    run_s = end - recovery
    if len(run) < window.min_samples or run_s + 1e-6 < window.min_duration_s:
        return (
            False,
            None,
            None,
            (
                f"users not recovered within {end - t_inject:.1f}s (requests succeeded again"
                f" only for {len(run)} answers / {run_s:.2f}s at the end; the stability window"
                f" needs {window.min_samples} answers and {window.min_duration_s:g}s)"
            ),
        )
    lower = last_send
    if last_stall > -math.inf:
        # a stall's end is an answer; the record knows nothing later than its last event
        # before that answer about when serving resumed
        events = [r.start for r in seen] + [r.end for r in seen if r.end is not None]
        lower = max(lower, max((t for t in events if t < last_stall), default=t_inject))
    rto = recovery - t_inject
    error = recovery - max(lower, t_inject)
    return True, rto, error, f"users served again {rto:.2f}s after the fault (± {error:.2f}s)"


def _is_trouble(r: UserRequest, t_inject: float, end: float, threshold_s: float) -> bool:
    """Failed during observation, or kept its user waiting at least the threshold."""
    if r.failed and r.end is not None and t_inject <= r.end <= end:
        return True
    return r.waiting_until(end) - max(r.start, t_inject) >= threshold_s


def _fault_window_end(
    t_inject: float, *, end: float, rto: float | None, fault_end: float | None,
    window: StabilityWindow,
) -> float:  # fmt: skip
    """The end of the fault window: the users' recovery or the fault's end, the later."""
    until = end if rto is None else t_inject + rto
    if fault_end is not None:
        until = max(until, min(fault_end, end))
    # at least one stability window: a recovery within a fraction of a second would
    # leave a handful of requests, and a rate over five of them is noise
    return min(end, max(until, t_inject + window.min_duration_s))


def _in_fault_window(
    seen: Sequence[UserRequest], t_inject: float, *, end: float, until: float
) -> list[UserRequest]:
    """The requests of the fault window: sent by its end -- a request belongs to it by its
    send, as its trouble is dated (one sent during the fault and answered 504 after it is
    one of the fault's failures) -- and answered during observation, or never."""
    return [
        r for r in seen
        if r.start <= until and r.outcome != "abandoned"
        and ((r.end is not None and t_inject <= r.end <= end) or r.end is None)
    ]  # fmt: skip


def _error_rate(during: Sequence[UserRequest]) -> float | None:
    if not during:
        return None
    return sum(1 for r in during if r.end is None or r.failed) / len(during)


def _p95_back(
    seen: Sequence[UserRequest], recovery: float, end: float, limit_ms: float, needed: int
) -> float | None:
    run_start: float | None = None
    run = 0
    t = recovery
    while t + 1.0 <= end + 1e-9:
        w_end = t + 1.0
        durations = [
            (r.end - r.start) * 1000 for r in seen if r.end is not None and t <= r.end < w_end
        ]
        waiting = [
            (w_end - r.start) * 1000
            for r in seen
            if r.start < w_end and (r.end is None or r.end >= w_end)
        ]
        over = [d for d in waiting if d > limit_ms]
        if not durations and not over:
            t = w_end
            continue  # nobody asked: neither breaks nor extends the run
        p95 = _percentile(sorted(durations + over), 0.95)
        if durations and p95 is not None and p95 <= limit_ms:
            run_start = t if run_start is None else run_start
            run += 1
            if run >= needed:
                return run_start - recovery
        else:
            run_start, run = None, 0
        t = w_end
    return None


def _percentile(values: Sequence[float], q: float) -> float | None:
    """``q``-quantile of sorted ``values``, interpolated linearly between the two nearest
    ranks (Hyndman and Fan's type 7, numpy's default). Not the nearest rank: a one-second
    window holds ~15 answers of a light load, and the nearest-rank p95 of 15 values is
    their maximum -- one slow request would fail the window (seen in a game day: 109 ms
    among 18 answers of 8-28 ms failed node-freeze's "p95 back to baseline")."""
    if not values:
        return None
    h = (len(values) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(values) - 1)
    return values[low] + (h - low) * (values[high] - values[low])
