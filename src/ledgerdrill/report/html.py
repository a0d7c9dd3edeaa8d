"""``report.html`` (self-contained: inline CSS, pictures as inline SVG) and
``summary.md`` (for CI job pages), both rendered from ``report.json`` alone."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ledgerdrill.measure import fmt_s
from ledgerdrill.report.model import RunReport, ScenarioReport
from ledgerdrill.report.picture import render_svg

MARKS = {"PASS": "✔", "FAIL": "✘", "INCONCLUSIVE": "?"}
# for finance readers: the two recovery times, and why they can differ
USERS_VS_PROBES = (
    "*Probes' RTO* is when the harness's own test transactions, sent every fraction of a"
    " second, succeeded again and kept succeeding. *Users' RTO* and *stall* come from every"
    " request the simulated users made: when their work went through again, and the"
    " longest time they waited with nothing getting through."
)


def fmt(seconds: float | None) -> str:
    return "—" if seconds is None else fmt_s(seconds)


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def recovery_text(rto_s: float | None, error_s: float | None, recovered: bool | None) -> str:
    """An RTO as people read it: the figure with its error bar, or why there is none."""
    if recovered is False:
        return "not recovered"
    if rto_s is None:
        return "—"
    return f"{fmt_s(rto_s)} ± {fmt_s(error_s or 0)}"


def rto_text(s: ScenarioReport) -> str:
    m = s.measured
    return recovery_text(m.rto_s, m.rto_error_s, m.recovered)


def users_text(s: ScenarioReport) -> str:
    """The users' RTO as people read it."""
    users = s.measured.users
    return "—" if users is None else recovery_text(users.rto_s, users.rto_error_s, users.recovered)


def stall_text(s: ScenarioReport) -> str:
    users = s.measured.users
    return "—" if users is None else fmt(users.longest_stall_s)


def by_tier(report: RunReport) -> list[tuple[str, list[ScenarioReport]]]:
    tiers: dict[str, list[ScenarioReport]] = defaultdict(list)
    for scenario in report.scenarios:
        tiers[scenario.tier or "—"].append(scenario)
    return sorted(tiers.items())


def read_timeline(run_dir: Path, scenario: ScenarioReport) -> list[dict[str, Any]]:
    if not scenario.timeline_file:
        return []
    try:
        text = (run_dir / scenario.timeline_file).read_text(encoding="utf-8")
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # a torn last line of a killed run
    return lines


def render_html(report: RunReport, run_dir: Path) -> str:
    env = Environment(
        loader=PackageLoader("ledgerdrill.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    pictures = {}
    for scenario in report.scenarios:
        timeline = read_timeline(run_dir, scenario)
        if timeline:
            pictures[scenario.id] = render_svg(scenario, timeline)
    return env.get_template("report.html.j2").render(
        report=report, tiers=by_tier(report), pictures=pictures, fmt=fmt, ms=ms,
        rto=rto_text, users_rto=users_text, stall=stall_text, marks=MARKS,
        users_vs_probes=USERS_VS_PROBES,
    )  # fmt: skip


def render_markdown(report: RunReport) -> str:
    """A table people read on a CI job page or a pull request."""
    counts: dict[str, int] = defaultdict(int)
    for scenario in report.scenarios:
        counts[scenario.verdict] += 1
    lines = [
        f"### ledgerdrill {report.run_id} on {report.target} (ERP API {report.erp_api})",
        "",
        " · ".join(f"{MARKS.get(v, '')} {n} {v}" for v, n in sorted(counts.items())),
        "",
        "| scenario | tier | RTO probes / users (target) | users' stall | RPO (target)"
        " | lost/dup | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.scenarios:
        objective = s.objective
        lines.append(
            f"| {s.id} | {s.tier or '—'} "
            f"| {rto_text(s)} / {users_text(s)} ({fmt(objective.rto_s if objective else None)}) "
            f"| {stall_text(s)} "
            f"| {'≥ ' if s.measured.rpo_censored else ''}{fmt(s.measured.rpo_s)}"
            f"{' (database)' if s.measured.rpo_source == 'database' else ''} "
            f"({fmt(objective.rpo_s if objective else None)}) "
            f"| {s.measured.lost_writes if s.measured.lost_writes is not None else '—'}/"
            f"{s.measured.duplicate_writes if s.measured.duplicate_writes is not None else '—'} "
            f"| {MARKS.get(s.verdict, '')} {s.verdict} |"
        )
    lines += ["", USERS_VS_PROBES]
    failing = [s for s in report.scenarios if s.verdict != "PASS"]
    if failing:
        lines += ["", "**Why not PASS**", ""]
        lines += [f"- `{s.id}` {s.verdict}: {'; '.join(s.reasons)}" for s in failing]
    return "\n".join(lines) + "\n"


def write_outputs(report: RunReport, run_dir: Path) -> list[Path]:
    """``report.html`` and ``summary.md`` beside ``report.json``."""
    html = run_dir / "report.html"
    html.write_text(render_html(report, run_dir), encoding="utf-8")
    summary = run_dir / "summary.md"
    summary.write_text(render_markdown(report), encoding="utf-8")
    return [html, summary]
