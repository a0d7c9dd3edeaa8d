"""Per-phase load statistics: pure functions over a :class:`LoadResult`'s seconds.

Phases, with ``I`` = t_inject_s, ``R`` = t_recovered_s, ``P`` = t_post_recovery_s
(default ``R + recovery_window_s``), all in seconds since the start of the test:

- baseline: before ``I``;  fault: ``[I, R)``;  recovery: ``[R, P)``;  post-recovery: after ``P``.

A one-second bucket ``[t, t+1)`` belongs to the phase holding its midpoint ``t + 0.5``,
so every second is in exactly one phase. No injection: everything is baseline. Not
recovered: the fault phase lasts to the end.

With the per-request record (``requests``, each request's own send and answer times),
the phases' counts and latencies come from it instead: a request is in the phase its
answer fell in, exactly (``[start, end)`` of each phase, no bucket rounding); one never
answered is a failure of the phase it was sent in; latencies are each answered request's
own. ``phases_source`` says which was used. The p95-back figure stays per second.

"p95 back within tolerance": the first second at or after ``R`` from which ``stable_s``
consecutive seconds each have requests and a p95 at most
``max(baseline_p95 x (1 + tolerance), baseline_p95 + tolerance_ms)``. A second with no
completed request is *not* within tolerance while load runs (requests may be hanging).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ledgerdrill.load.model import PHASES, LoadResult, LoadSummary, Phase, PhaseStats, SecondStats
from ledgerdrill.measure.users import UserRequest


def merge(hists: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for hist in hists:
        for value, count in hist.items():
            if count:
                out[value] = out.get(value, 0) + count
    return out


def percentile(hist: Mapping[int, int], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in (0, 1]) of a value -> count histogram."""
    if not 0 < q <= 1:
        raise ValueError(f"percentile {q!r} is not in (0, 1]")
    total = sum(c for c in hist.values() if c > 0)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(hist):
        seen += max(0, hist[value])
        if seen >= rank:
            return float(value)
    return float(max(hist))  # pragma: no cover - rank <= total


def phase_of(
    t_s: int, t_inject_s: float | None, t_recovered_s: float | None, t_post_s: float | None
) -> Phase:
    mid = t_s + 0.5
    if t_inject_s is None or mid < t_inject_s:
        return "baseline"
    if t_recovered_s is None or mid < t_recovered_s:
        return "fault"
    if t_post_s is None or mid < t_post_s:
        return "recovery"
    return "post-recovery"


def split(
    seconds: Sequence[SecondStats],
    t_inject_s: float | None,
    t_recovered_s: float | None,
    t_post_s: float | None,
) -> dict[Phase, list[SecondStats]]:
    out: dict[Phase, list[SecondStats]] = {p: [] for p in PHASES}
    for second in seconds:
        out[phase_of(second.t_s, t_inject_s, t_recovered_s, t_post_s)].append(second)
    return out


def phase_stats(
    phase: Phase, start_s: float, end_s: float, seconds: Sequence[SecondStats]
) -> PhaseStats:
    requests = sum(s.requests for s in seconds)
    failures = sum(s.failures for s in seconds)
    hist = merge(s.latency_hist_ms for s in seconds)
    return PhaseStats(
        phase=phase,
        start_s=start_s,
        end_s=max(start_s, end_s),
        seconds=len(seconds),
        requests=requests,
        failures=failures,
        error_rate=(failures / requests) if requests else None,
        throughput_rps=(requests / len(seconds)) if seconds else None,
        p50_ms=percentile(hist, 0.50),
        p95_ms=percentile(hist, 0.95),
        p99_ms=percentile(hist, 0.99),
    )


def _exact_percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, as ``percentile`` does for histograms."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def request_phase_stats(
    phase: Phase,
    start_s: float,
    end_s: float,
    requests: Sequence[UserRequest],
    origin_epoch_s: float,
    *,
    first: bool,
    last: bool,
) -> PhaseStats:
    """One phase from the per-request record (times relative to ``origin_epoch_s``).
    The first phase also takes what came before its start, the last what came after its
    end: every request is in exactly one phase."""

    def at(r: UserRequest) -> float:
        return (r.end if r.end is not None else r.start) - origin_epoch_s

    mine = [r for r in requests
            if (first or at(r) >= start_s) and (last or at(r) < end_s)]  # fmt: skip
    failures = sum(1 for r in mine if r.outcome != "ok")
    latencies = [(r.end - r.start) * 1000 for r in mine if r.end is not None]
    span = max(0.0, end_s - start_s)
    return PhaseStats(
        phase=phase,
        start_s=start_s,
        end_s=max(start_s, end_s),
        seconds=round(span),
        requests=len(mine),
        failures=failures,
        error_rate=(failures / len(mine)) if mine else None,
        throughput_rps=(len(mine) / span) if span > 0 else None,
        p50_ms=_exact_percentile(latencies, 0.50),
        p95_ms=_exact_percentile(latencies, 0.95),
        p99_ms=_exact_percentile(latencies, 0.99),
    )


def p95_limit(baseline_p95_ms: float, tolerance: float, tolerance_ms: float) -> float:
    return max(baseline_p95_ms * (1 + tolerance), baseline_p95_ms + tolerance_ms)


def time_until_p95_back(
    seconds: Sequence[SecondStats], t_recovered_s: float, limit_ms: float, stable_s: int
) -> float | None:
    """Seconds from ``t_recovered_s`` to the start of the first run of ``stable_s`` seconds
    whose p95 is within ``limit_ms`` (each with requests); None when there is none."""
    after = sorted((s for s in seconds if s.t_s + 0.5 >= t_recovered_s), key=lambda s: s.t_s)
    run_start: int | None = None
    run = 0
    previous: int | None = None
    for second in after:
        p95 = percentile(second.latency_hist_ms, 0.95) if second.latency_hist_ms else second.p95_ms
        ok = second.requests > 0 and p95 is not None and p95 <= limit_ms
        contiguous = previous is not None and second.t_s == previous + 1
        previous = second.t_s
        if not ok:
            run_start, run = None, 0
            continue
        if run_start is None or not contiguous:
            run_start, run = second.t_s, 0
        run += 1
        if run >= stable_s:
            return max(0.0, run_start - t_recovered_s)
    return None


def summarise(
    result: LoadResult,
    t_inject_s: float | None,
    t_recovered_s: float | None,
    *,
    t_post_recovery_s: float | None = None,
    recovery_window_s: float = 10.0,
    p95_tolerance: float = 0.5,
    p95_tolerance_ms: float = 25.0,
    stable_s: int = 3,
    requests: Sequence[UserRequest] | None = None,
    origin_epoch_s: float | None = None,
) -> LoadSummary:
    """Split ``result`` into the four phases and measure each (see the module's doc)."""
    if t_inject_s is None and t_recovered_s is not None:
        raise ValueError("t_recovered_s given without t_inject_s")
    if t_inject_s is not None and t_recovered_s is not None and t_recovered_s < t_inject_s:
        raise ValueError(f"recovered at {t_recovered_s}s, before the injection at {t_inject_s}s")
    if stable_s < 1 or p95_tolerance < 0 or p95_tolerance_ms < 0 or recovery_window_s < 0:
        raise ValueError("stable_s >= 1 and non-negative tolerances and window are required")
    post = t_post_recovery_s
    if post is None and t_recovered_s is not None:
        post = t_recovered_s + recovery_window_s
    if post is not None and t_recovered_s is not None and post < t_recovered_s:
        raise ValueError("t_post_recovery_s is before t_recovered_s")
    end = float(result.seconds[-1].t_s + 1) if result.seconds else 0.0
    parts = split(result.seconds, t_inject_s, t_recovered_s, post)
    bounds: dict[Phase, tuple[float, float]] = {
        "baseline": (0.0, end if t_inject_s is None else t_inject_s),
        "fault": (
            end if t_inject_s is None else t_inject_s,
            end if t_recovered_s is None else t_recovered_s,
        ),
        "recovery": (
            end if t_recovered_s is None else t_recovered_s,
            end if post is None else post,
        ),
        "post-recovery": (post if post is not None else end, end),
    }
    exact = requests is not None and origin_epoch_s is not None
    if requests is not None and origin_epoch_s is not None:
        # the record's own end: the last answer or send, not the last whole second
        end = max([end, *((r.end or r.start) - origin_epoch_s for r in requests)])
        phases = [
            request_phase_stats(p, min(bounds[p][0], end), min(bounds[p][1], end), requests,
                                origin_epoch_s, first=p == PHASES[0], last=p == PHASES[-1])
            for p in PHASES
        ]  # fmt: skip
    else:
        phases = [
            phase_stats(p, min(bounds[p][0], end), min(bounds[p][1], end), parts[p]) for p in PHASES
        ]
    baseline_p95 = phases[0].p95_ms
    limit = back = None
    reason = ""
    if t_inject_s is None:
        reason = "no fault injected"
    elif baseline_p95 is None:
        reason = "no baseline requests to compare with"
    elif t_recovered_s is None:
        reason = "not recovered"
    else:
        limit = p95_limit(baseline_p95, p95_tolerance, p95_tolerance_ms)
        back = time_until_p95_back(result.seconds, t_recovered_s, limit, stable_s)
        if back is None:
            reason = f"p95 not within {limit:g} ms for {stable_s} s in a row before the end"
    return LoadSummary(
        profile=result.profile,
        t_inject_s=t_inject_s,
        t_recovered_s=t_recovered_s,
        t_post_recovery_s=post,
        phases=phases,
        requests=sum(p.requests for p in phases),
        failures=sum(p.failures for p in phases),
        locust_requests=result.locust_requests,
        baseline_p95_ms=baseline_p95,
        p95_limit_ms=limit,
        p95_back_after_s=back,
        p95_back_reason=reason,
        phases_source="requests" if exact else "seconds",
    )
