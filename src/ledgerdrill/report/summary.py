"""The per-scenario table people read at the end of a run (terminal and Markdown)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledgerdrill.measure import fmt_s
from ledgerdrill.report.model import RunReport, ScenarioReport

# an RPO the database witnessed (the canary alone saw less): the report has both figures
DB_MARK = " db"

HEADERS = [
    "scenario",
    "fault",
    "tier",
    "RTO probes/users (target)",
    "stall",
    "RPO (target)",
    "lost/dup",
    "verdict",
]
_STYLE = {
    "PASS": "bold green",
    "FAIL": "bold red",
    "INCONCLUSIVE": "bold yellow",
    "REFUSED": "bold magenta",
}


def _s(value: float | None) -> str:
    return "—" if value is None else fmt_s(value)


def row(s: ScenarioReport) -> list[str]:
    m = s.measured
    if m.rto_s is not None:
        rto = f"{_s(m.rto_s)}±{_s(m.rto_error_s)}"
    elif m.recovered is False:
        rto = "not recovered"
    else:
        rto = "—"
    target_rto = _s(s.objective.rto_s) if s.objective else "—"
    target_rpo = _s(s.objective.rpo_s) if s.objective else "—"
    lost = "—" if m.lost_writes is None else f"{m.lost_writes}/{m.duplicate_writes or 0}"
    users = m.users
    if users is None:
        users_rto = stall = "—"
    else:
        users_rto = "not recovered" if users.recovered is False else _s(users.rto_s)
        stall = _s(users.longest_stall_s)
    return [
        s.id,
        s.fault or "—",
        s.tier or "—",
        f"{rto} / {users_rto} ({target_rto})",  # compact: one line within 120 columns
        stall,
        f"{'≥ ' if m.rpo_censored else ''}{_s(m.rpo_s)}{DB_MARK * (m.rpo_source == 'database')}"
        f" ({target_rpo})",
        lost,
        s.verdict,
    ]


# below this width the fault column -- mostly the scenario's own name again -- is left
# out, so that the scenario and the figures keep a line each (the report has the fault)
WIDE_ENOUGH_FOR_FAULT = 160


def terminal_table(report: RunReport, width: int = 140) -> str:
    title = f"ledgerdrill run {report.run_id} on {report.target} (ERP API {report.erp_api})"
    table = Table(title=title, title_justify="left")
    shown = [h for h in HEADERS if h != "fault" or width >= WIDE_ENOUGH_FOR_FAULT]
    for header in shown:
        if header == "scenario":  # what people look for: folded if it must be, never cut
            table.add_column(header, overflow="fold", ratio=1, min_width=14)
        elif header == "fault":  # the first to give way
            table.add_column(header, overflow="ellipsis", max_width=14)
        else:  # figures and the verdict read as one line each
            table.add_column(header, no_wrap=True)
    for scenario in report.scenarios:
        # escaped: a parametrised id such as ``certificate[expired]`` is not rich markup
        cells = [escape(cell) for cell, h in zip(row(scenario), HEADERS, strict=True) if h in shown]
        style = _STYLE.get(scenario.verdict)  # an unstyled verdict must stay valid markup
        cells[-1] = f"[{style}]{cells[-1]}[/]" if style else cells[-1]
        table.add_row(*cells)
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=False, color_system=None).print(table)
    lines = [buffer.getvalue().rstrip()]
    for scenario in report.scenarios:
        if scenario.verdict != "PASS":
            for reason in scenario.reasons:
                lines.append(f"  {scenario.id} {scenario.verdict}: {reason}")
    return "\n".join(lines)


def markdown_table(report: RunReport) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for scenario in report.scenarios:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in row(scenario)) + " |")
    return "\n".join(out)


def plan_text(report: RunReport) -> str:
    lines = [
        f"Plan for target {report.target} ({report.platform}, {report.environment}, "
        f"ERP API {report.erp_api}):"
    ]
    regions = report.inventory.get("regions")
    if isinstance(regions, dict):
        for region, zones in regions.items():
            shown = "; ".join(f"zone {z}: {', '.join(n)}" for z, n in dict(zones).items())
            lines.append(f"  region {region} — {shown}")
    # backend-specific facts the plan must show (the servers a failover would act on)
    extra = report.inventory.get("plan_lines")
    if isinstance(extra, list):
        lines += [f"  {line}" for line in extra if line]
    for scenario in report.scenarios:
        objective = ""
        if scenario.objective:
            objective = (
                f" — RTO ≤ {_s(scenario.objective.rto_s)}, RPO ≤ {_s(scenario.objective.rpo_s)}"
            )
        lines.append(f"  {scenario.id} [{scenario.tier or 'no tier'}]{objective}")
        if not scenario.planned:
            lines.append("      (no fault: nothing would be touched)")
        for action in scenario.planned:
            where = f" → {', '.join(action.targets)}" if action.targets else ""
            step = "(runbook step, once approved) " if action.fault == "runbook" else ""
            lines.append(f"      would {step}{action.description}{where}")
            changes = [c for c in action.changes if c != action.description]
            lines += [f"        · {change}" for change in changes]
            if action.approval:
                lines.append(f"        approved by: {action.approval}")
            if action.after_interrupt:
                lines.append(f"        if interrupted: {action.after_interrupt}")
            for refusal in action.refused:
                lines.append(f"      REFUSED: {refusal}")
            if action.chosen_when_run:
                lines.append(
                    f"      (acts on {action.chosen_when_run}: named as the plan finds it now; "
                    "an earlier scenario may move it)"
                )
            for window in action.overrides:
                lines.append(f"      OVERRIDE: blackout window {window} is in effect, overridden")
    return "\n".join(lines)
