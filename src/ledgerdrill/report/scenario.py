"""One scenario's report, built from its drill and outcome: the figures of every witness
(probes, users, canary, database), the load, the events, the checks. ``report.json``'s
``scenarios`` entries and the JUnit properties CI dashboards read."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ledgerdrill.report.model import (
    EventModel,
    Figures,
    LoadSecond,
    ObjectiveModel,
    ProbeRecovery,
    ScenarioLoad,
    ScenarioReport,
    UsersModel,
)
from ledgerdrill.timeline import Timeline

if TYPE_CHECKING:
    from ledgerdrill.drill import Drill, DrillOutcome
    from ledgerdrill.measure import Loss
    from ledgerdrill.platforms.base import Platform


def scenario_load(drill: Drill, timeline: Timeline) -> ScenarioLoad | None:
    """The load's summary and per-second series, on the scenario's timeline."""
    result, summary = drill.load_result, drill.load_summary
    if result is None or summary is None:
        return None
    origin = timeline.origin.wall.timestamp()
    start = result.started_epoch_s if result.started_epoch_s is not None else origin
    # Locust buckets by whole epoch seconds: bucket t_s starts at floor(start) + t_s
    offset = float(int(start)) - origin
    return ScenarioLoad(
        profile=result.profile,
        summary=summary,
        seconds=[
            LoadSecond(
                t_s=round(offset + s.t_s, 3),
                requests=s.requests,
                failures=s.failures,
                p50_ms=s.p50_ms,
                p95_ms=s.p95_ms,
            )
            for s in result.seconds
        ],
        locust_requests=result.locust_requests,
        locust_failures=result.locust_failures,
        ended_by=result.ended_by,
        cpu_s=result.cpu_s,
        errors=[e.model_dump() for e in result.errors[:20]],
    )


def _total(seconds: list[float]) -> float | None:
    return round(sum(seconds), 3) if seconds else None


def _rpo_witnesses(loss: Loss | None, platform: Platform) -> dict[str, Any]:
    """Both RPO witnesses for the report: the canary's, and the database's when a
    promotion was read (the largest of several; counts added up)."""
    if loss is None:
        return {}
    known = [w for w in loss.database if w.rpo_s is not None]
    database_rpo = max((w.rpo_s for w in known if w.rpo_s is not None), default=None)
    detail = "; ".join(w.detail for w in loss.database) or (
        platform.database_witness_gap() or "no promotion in this scenario"
    )
    return {
        "rpo_source": loss.rpo_source,
        "rpo_canary_s": loss.rpo_canary_s if loss.rpo_canary_s is not None else loss.rpo_s,
        "canary_history_s": loss.canary_history_s,
        "rpo_database_s": database_rpo,
        "rpo_database_detail": detail,
        "lost_commits": sum(w.lost_commits or 0 for w in known if w.acknowledged)
        if known
        else None,
    }


def scenario_report(
    drill: Drill,
    outcome: DrillOutcome,
    nodeid: str,
    *,
    timeline: Timeline,
    timeline_file: str | None,
    error: str | None,
) -> ScenarioReport:
    measured = outcome.measurements
    rto = measured.rto
    loss = measured.loss
    figures = Figures(
        rto_s=rto.rto_s if rto else None,
        rto_error_s=rto.rto_error_s if rto else None,
        recovered=rto.recovered if rto else None,
        time_to_detect_s=measured.time_to_detect_s,
        time_to_detect_error_s=measured.detection.detect_error_s if measured.detection else None,
        downtime_s=max((r.downtime_s for r in measured.recoveries), default=None),
        availability=min(
            (r.availability for r in measured.recoveries if r.availability is not None),
            default=None,
        ),
        rpo_s=loss.rpo_s if loss else None,
        rpo_censored=loss.rpo_censored if loss else None,
        **_rpo_witnesses(loss, drill.platform),
        rpo_vs_restore_point_s=loss.rpo_vs_restore_point_s if loss else None,
        writes_attempted=loss.attempted if loss else None,
        lost_writes=len(loss.lost) if loss else None,
        recovered_writes=len(loss.recovered) if loss else None,
        unexpected_writes=len(loss.unexpected) if loss else None,
        duplicate_writes=len(loss.duplicates) if loss else None,
        users=UsersModel(**dataclasses.asdict(measured.users)) if measured.users else None,
        decision_time_s=_total([step.decision_s for step in drill.steps]),
        runbook_time_s=_total([step.run_s for step in drill.steps if step.run_s is not None]),
    )
    objective = drill.objective
    return ScenarioReport(
        id=drill.scenario_id,
        nodeid=nodeid,
        fault=outcome.fault.kind
        if outcome.fault
        else (outcome.planned[0].fault if outcome.planned else None),
        tier=drill.tier,
        objective=ObjectiveModel(rto_s=objective.rto_s, rpo_s=objective.rpo_s)
        if objective
        else None,
        measured=figures,
        verdict=outcome.judgement.verdict.value,
        reasons=outcome.judgement.reasons,
        checks=[
            {"name": c.name, "passed": c.passed, "text": c.text} for c in outcome.judgement.checks
        ],
        probes=[
            ProbeRecovery(
                probe=r.probe,
                recovered=r.recovered,
                impact_seen=r.impact_seen,
                rto_s=r.rto_s,
                rto_error_s=r.rto_error_s if r.rto_s is not None else None,
                time_to_detect_s=r.time_to_detect_s,
                time_to_detect_error_s=r.detect_error_s,
                downtime_s=r.downtime_s,
                availability=r.availability,
                samples=r.samples_after_inject,
                reason=r.reason,
            )
            for r in measured.recoveries
        ],
        events=[
            EventModel(
                kind=e.kind,
                name=e.name,
                at=e.at.wall,
                t_s=round(e.at.seconds_since(timeline.origin), 3),
                attributes={k: v for k, v in e.attributes.items()},
            )
            for e in timeline.events()
        ],
        planned=outcome.planned,
        actions=list(drill.actions),
        timeline_file=timeline_file,
        load=scenario_load(drill, timeline),
        lost_refs=list(loss.lost[:500]) if loss else [],
        duplicate_refs=list(loss.duplicates[:500]) if loss else [],
        started_at=timeline.origin.wall,
        duration_s=round(timeline.clock.now().seconds_since(timeline.origin), 3),
        error=error,
    )


def junit_properties(scenario: ScenarioReport) -> list[tuple[str, object]]:
    """The measured figures as JUnit properties (CI dashboards read these)."""
    props: list[tuple[str, object]] = [("ledgerdrill.verdict", scenario.verdict)]
    if scenario.tier:
        props.append(("ledgerdrill.tier", scenario.tier))
    if scenario.fault:
        props.append(("ledgerdrill.fault", scenario.fault))
    for name, value in scenario.measured.model_dump(exclude={"users"}).items():
        if value is not None:
            props.append((f"ledgerdrill.{name}", value))
    if scenario.measured.users is not None:  # scalars only: a CI dashboard reads numbers
        for name, value in scenario.measured.users.model_dump().items():
            if value is not None and isinstance(value, int | float | str):
                props.append((f"ledgerdrill.users.{name}", value))
    if scenario.objective is not None:
        if scenario.objective.rto_s is not None:
            props.append(("ledgerdrill.target_rto_s", scenario.objective.rto_s))
        if scenario.objective.rpo_s is not None:
            props.append(("ledgerdrill.target_rpo_s", scenario.objective.rpo_s))
    props.extend((f"ledgerdrill.reason.{i}", r) for i, r in enumerate(scenario.reasons, 1))
    return props
