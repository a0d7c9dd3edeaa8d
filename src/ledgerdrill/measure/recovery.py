"""Recovery time (RTO), time to detect, downtime and availability from probe samples.

Definitions (docs/architecture.md, "Recovery (RTO) and detection"):

- time to detect: the first failed sample at or after ``t_inject`` (its send), with an
  error bar back to the last healthy answer before it (or the injection, if later): the
  fault became visible somewhere in between;
- recovered at: the start of the first run of healthy samples after ``t_inject`` that
  lasts at least the stability window and is not broken before the observation
  ends -- so a flap after an apparent recovery moves recovery later;
- RTO = recovered_at - t_inject, with an error bar from the samples themselves: the true
  moment lies between the send of the last failed sample and the first healthy answer
  after it (about one interval when samples overlap, a timeout more when a probe waits
  out each sample before the next);
- a probe that never degrades has RTO 0 ("no impact seen");
- a timeout is never a recovery time: it is "not recovered within N s";
- a relapse: the first failed sample at or after the moment the drill saw the platform
  recovered (its stability window passed) and before observation ended -- the platform
  failed again, e.g. under the post-recovery surge. The RTO above then counts to the
  final stable recovery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ledgerdrill.timeline import Instant, Sample

# float noise on durations computed from nanoseconds; far below any sampling interval
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class StabilityWindow:
    """How long a healthy run must last to count as recovery."""

    min_samples: int = 5
    min_duration_s: float = 2.0


@dataclass(frozen=True)
class Recovery:
    probe: str
    interval_s: float
    samples_after_inject: int
    impact_seen: bool
    recovered: bool
    time_to_detect_s: float | None
    rto_s: float | None
    downtime_s: float
    availability: float | None
    observed_s: float
    reason: str
    # last failed send -> first healthy answer after it; None: one interval (no failure)
    uncertainty_s: float | None = None
    # last healthy answer (or the injection) -> first failed send; None: nothing seen
    detect_error_s: float | None = None

    @property
    def rto_error_s(self) -> float:
        return self.interval_s if self.uncertainty_s is None else self.uncertainty_s

    @property
    def has_data(self) -> bool:
        return self.samples_after_inject > 0


def measure_recovery(
    samples: Sequence[Sample],
    t_inject: Instant,
    *,
    interval_s: float,
    window: StabilityWindow | None = None,
    timeout_s: float | None = None,
    end: Instant | None = None,
) -> Recovery:
    """Measure one probe's recovery from its samples.

    ``end`` is when observation stopped (default: the last sample). ``timeout_s`` caps
    how late a recovery may start and still count.
    """
    window = window or StabilityWindow()
    probe = samples[0].probe if samples else ""
    after = sorted(
        (s for s in samples if s.at.mono_ns >= t_inject.mono_ns), key=lambda s: s.at.mono_ns
    )
    if not after:
        return Recovery(
            probe=probe, interval_s=interval_s, samples_after_inject=0, impact_seen=False,
            recovered=False, time_to_detect_s=None, rto_s=None, downtime_s=0.0,
            availability=None, observed_s=0.0, reason="no samples after the fault was injected",
        )  # fmt: skip
    end_at = end if end is not None and end.mono_ns >= after[-1].at.mono_ns else after[-1].at
    observed_s = end_at.seconds_since(t_inject)
    first_failure = next((s for s in after if not s.ok), None)
    detect_error_s = None
    if first_failure is not None:
        healthy_before = [
            answered_at(s) for s in samples
            if s.ok and s.at.mono_ns < first_failure.at.mono_ns
        ]  # fmt: skip
        since = max([t_inject, *healthy_before], key=lambda at: at.mono_ns)
        detect_error_s = max(0.0, first_failure.at.seconds_since(since))
    common = Recovery(
        probe=probe,
        interval_s=interval_s,
        samples_after_inject=len(after),
        impact_seen=first_failure is not None,
        recovered=False,
        time_to_detect_s=first_failure.at.seconds_since(t_inject) if first_failure else None,
        rto_s=None,
        downtime_s=_downtime(after, interval_s, end_at),
        availability=sum(s.ok for s in after) / len(after),
        observed_s=observed_s,
        reason="",
        detect_error_s=detect_error_s,
    )
    if first_failure is None:
        return replace(common, recovered=True, rto_s=0.0, reason="no impact seen")

    not_recovered = _not_recovered(observed_s, timeout_s)
    run_start = _start_of_final_healthy_run(after)
    if run_start is None:
        last = after[-1].detail
        seen = f"; last seen: {last}" if last else ""
        return replace(
            common,
            reason=f"{not_recovered} (still failing when observation ended{seen})",
        )  # fmt: skip
    run = after[run_start:]
    run_duration_s = end_at.seconds_since(run[0].at)
    if len(run) < window.min_samples or run_duration_s + _EPSILON_S < window.min_duration_s:
        return replace(
            common,
            reason=f"{not_recovered} (healthy for only {len(run)} samples"
            f" / {run_duration_s:.2f}s at the end; the stability window needs"
            f" {window.min_samples} samples and {window.min_duration_s:g}s)",
        )  # fmt: skip
    rto_s = answered_at(run[0]).seconds_since(t_inject)
    last_failed = after[run_start - 1]  # run_start > 0: a failure came before the run
    uncertainty_s = answered_at(run[0]).seconds_since(last_failed.at)
    if timeout_s is not None and rto_s > timeout_s:
        return replace(
            common,
            reason=f"not recovered within {timeout_s:.1f}s (healthy only from {rto_s:.1f}s)",
        )  # fmt: skip
    return replace(
        common, recovered=True, rto_s=rto_s, uncertainty_s=uncertainty_s,
        reason=f"recovered {rto_s:.2f}s ± {uncertainty_s:.2f}s after injection",
    )  # fmt: skip


@dataclass(frozen=True)
class Relapse:
    probe: str
    at: Instant
    after_recovery_s: float  # from the moment recovery was observed
    detail: str


def relapse(samples: Sequence[Sample], *, recovered_seen: Instant, end: Instant) -> Relapse | None:
    """The first failure of one probe in ``[recovered_seen, end)``; None when it held."""
    window = (s for s in samples if recovered_seen.mono_ns <= s.at.mono_ns < end.mono_ns)
    failed = sorted((s for s in window if not s.ok), key=lambda s: s.at.mono_ns)
    if not failed:
        return None
    first = failed[0]
    return Relapse(first.probe, first.at, first.at.seconds_since(recovered_seen), first.detail)


def service_recovery(recoveries: Sequence[Recovery]) -> Recovery | None:
    """The service's recovery from its probes' (those that count for RTO).

    A probe not recovered is the answer. Otherwise each probe that saw the fault brackets
    its recovery, ``[rto - rto_error, rto]``, and the service was certainly not back
    before the latest bracket start ``L``. Probes whose healthy answer came before ``L``
    had recovered already and do not bound the end; every other bracket holds ``L``, so
    they share a moment -- one recovery, seen by fine and coarse probes alike -- and the
    earliest healthy answer among them dates the service: the finest probe dates, the
    coarse ones confirm. The error bar runs from ``L`` to that answer. No probe saw the
    fault: "no impact seen" (RTO 0)."""
    if not recoveries:
        return None
    unrecovered = [r for r in recoveries if not r.recovered or r.rto_s is None]
    if unrecovered:
        return unrecovered[0]
    seen = [r for r in recoveries if r.impact_seen and r.rto_s is not None]
    if not seen:
        return recoveries[0]
    latest_start = max(_rto(r) - r.rto_error_s for r in seen)
    holding = [r for r in seen if _rto(r) + _EPSILON_S >= latest_start]
    dating = min(holding, key=_rto)
    others = sorted(r.probe for r in holding if r is not dating)
    confirmed = f"; confirmed by {', '.join(others)}" if others else ""
    error_s = max(0.0, _rto(dating) - latest_start)
    return replace(
        dating,
        uncertainty_s=error_s,
        reason=f"recovered {_rto(dating):.2f}s ± {error_s:.2f}s after injection "
        f"(dated by {dating.probe}{confirmed})",
    )


def _rto(recovery: Recovery) -> float:
    assert recovery.rto_s is not None
    return recovery.rto_s


def _not_recovered(observed_s: float, timeout_s: float | None) -> str:
    """The time a "not recovered" is about is the time actually watched: a drill that
    stopped watching early (its revert began) must not claim the whole timeout."""
    if timeout_s is None or observed_s + _EPSILON_S >= timeout_s:
        return f"not recovered within {timeout_s if timeout_s is not None else observed_s:.1f}s"
    return (
        f"not recovered in the {observed_s:.1f}s observed (observation ended before the"
        f" {timeout_s:.1f}s recovery timeout)"
    )


def _start_of_final_healthy_run(samples: Sequence[Sample]) -> int | None:
    """Index of the first sample of the trailing run of ok samples, or None if the last failed."""
    if not samples[-1].ok:
        return None
    index = len(samples) - 1
    while index > 0 and samples[index - 1].ok:
        index -= 1
    return index


def answered_at(sample: Sample) -> Instant:
    """When a healthy sample *saw* health: its answer's arrival, not its start. A request
    sent during an outage and answered just after it ends succeeds; dating it by its
    start would put the recovery before the service came back (by up to the timeout)."""
    return sample.at.plus(sample.latency_s) if sample.ok else sample.at


def _downtime(samples: Sequence[Sample], interval_s: float, end: Instant) -> float:
    """Failed time: each failed sample stands until the next sample (until its answer,
    when that one is healthy). The last one stands until the end of observation, or one
    interval if that is sooner."""
    total = 0.0
    for index, sample in enumerate(samples):
        if sample.ok:
            continue
        if index + 1 < len(samples):
            total += max(0.0, answered_at(samples[index + 1]).seconds_since(sample.at))
        else:
            total += max(0.0, min(interval_s, end.seconds_since(sample.at)) or interval_s)
    return total
