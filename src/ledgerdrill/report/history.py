"""History across game days: one line per run in ``reports/history.jsonl``, and the trend
of measured RTO and RPO per scenario, with regressions flagged.

A regression: a scenario's RTO (or RPO) worse than the median of its previous
``last`` runs by more than ``tolerance`` (a fraction) and more than ``min_delta_s``
(so 0.1 s against 0.05 s is not a regression). A CI gate can fail on one.
"""

from __future__ import annotations

import io
import json
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerdrill.report.model import RunReport

HISTORY = "history.jsonl"


def history_line(report: RunReport, manifest_sha256: str | None = None) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "target": report.target,
        "finished_at": (report.finished_at or report.started_at).isoformat(),
        "manifest_sha256": manifest_sha256,
        "scenarios": {
            s.id: {
                "verdict": s.verdict,
                "tier": s.tier,
                "rto_s": s.measured.rto_s,
                "recovered": s.measured.recovered,
                "users_rto_s": s.measured.users.rto_s if s.measured.users else None,
                "longest_stall_s": (s.measured.users.longest_stall_s if s.measured.users else None),
                "rpo_s": s.measured.rpo_s,
                "lost": s.measured.lost_writes,
            }
            for s in report.scenarios
        },
    }


def append_history(
    report: RunReport, reports_dir: Path, manifest_sha256: str | None = None
) -> Path:
    path = reports_dir / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(history_line(report, manifest_sha256)) + "\n")
    return path


def read_history(reports_dir: Path, target: str | None = None) -> list[dict[str, Any]]:
    try:
        lines = (reports_dir / HISTORY).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    runs = []
    for raw in lines:
        try:
            run = json.loads(raw)
        except ValueError:
            continue  # a torn line of a killed run
        if target is None or run.get("target") == target:
            runs.append(run)
    return runs


@dataclass(frozen=True)
class Regression:
    scenario: str
    measure: str  # "rto" | "users_rto" | "longest_stall" | "rpo"
    value: float
    median: float
    runs: int

    def text(self) -> str:
        label = _LABELS.get(self.measure, self.measure)
        return (f"{self.scenario}: {label} {self.value:.2f}s against a median of "
                f"{self.median:.2f}s over the previous {self.runs} runs")  # fmt: skip


_LABELS = {"rto": "RTO", "users_rto": "users' RTO", "longest_stall": "users' longest stall",
           "rpo": "RPO"}  # fmt: skip


def regressions(
    runs: list[dict[str, Any]], *, last: int = 5, tolerance: float = 0.5, min_delta_s: float = 1.0
) -> list[Regression]:
    """Compare the newest run with the median of the ``last`` runs before it."""
    if len(runs) < 2:
        return []
    newest, before = runs[-1], runs[-1 - last : -1]
    found = []
    for scenario, now in sorted(newest["scenarios"].items()):
        for measure in ("rto", "users_rto", "longest_stall", "rpo"):
            value = now.get(f"{measure}_s")
            past = [r["scenarios"][scenario].get(f"{measure}_s") for r in before
                    if scenario in r["scenarios"]]  # fmt: skip
            past = [p for p in past if p is not None]
            if value is None or not past:
                continue
            median = statistics.median(past)
            if value > median * (1 + tolerance) and value - median > min_delta_s:
                found.append(Regression(scenario, measure, value, median, len(past)))
    return found


def trend_table(runs: list[dict[str, Any]], last: int = 10) -> str:
    shown = runs[-last:]
    scenarios = sorted({s for r in shown for s in r["scenarios"]})
    out = io.StringIO()
    out.write(f"{'scenario':46} " + " ".join(f"{r['run_id'][-6:]:>9}" for r in shown) + "\n")
    for scenario in scenarios:
        cells = []
        for run in shown:
            entry = run["scenarios"].get(scenario)
            if entry is None or entry.get("rto_s") is None:
                cells.append(f"{'—':>9}")
            elif entry.get("recovered") is False:
                cells.append(f"{'no rec.':>9}")
            else:
                cells.append(f"{entry['rto_s']:8.2f}s")
        out.write(f"{scenario[:46]:46} " + " ".join(cells) + "\n")
    return out.getvalue()


def trend_picture(runs: list[dict[str, Any]], path: Path, last: int = 20) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = runs[-last:]
    when = [datetime.fromisoformat(r["finished_at"]) for r in shown]
    fig, (rto_ax, users_ax, rpo_ax) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for scenario in sorted({s for r in shown for s in r["scenarios"]}):
        for ax, key in ((rto_ax, "rto_s"), (users_ax, "longest_stall_s"), (rpo_ax, "rpo_s")):
            runs_with = [
                (t, r) for t, r in zip(when, shown, strict=True) if scenario in r["scenarios"]
            ]
            points = [(t, r["scenarios"][scenario].get(key)) for t, r in runs_with]
            points = [(t, v) for t, v in points if v is not None]
            if points:
                ax.plot([t for t, _ in points], [v for _, v in points], marker="o", label=scenario)
    rto_ax.set_ylabel("RTO, probes (s)")
    users_ax.set_ylabel("users' longest stall (s)")
    rpo_ax.set_ylabel("RPO (s)")
    rto_ax.legend(fontsize=6, ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
