"""The timeline picture of one scenario (matplotlib, SVG text for embedding).

Top panel: one lane per probe -- healthy time green, failed time red -- with the fault,
runbook steps and recovery as labelled lines, and the RTO span against the target.
The canary's lane shows acknowledged writes and, marked, the ones that were lost. The
users' lane, from the load's per-request record, shows the stalls (users waiting with
nothing getting through for a second or more) and when users were served again.
Bottom panel (when load ran): requests and failures per second, p95 latency, with the
load's phases shaded. Colours are doubled by hatching and labels, so it prints in grey.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to SVG text
import matplotlib.pyplot as plt

from ledgerdrill.report.model import ScenarioReport, UsersModel

OK, FAILED, WARN = "#3a9d5d", "#c8423b", "#d9a400"
USERS_LANE = "users (every request)"
PHASE_SHADES = {"baseline": "#eef3f8", "fault": "#fbe3e1", "recovery": "#fff3d6",
                "post-recovery": "#e6f4ea"}  # fmt: skip
MARKERS = {
    "fault.injected": ("fault", FAILED, "-"),
    "runbook.approval-requested": ("runbook asked", "#555555", (0, (1, 3))),
    "runbook.started": ("runbook", "#555555", "--"),
    "runbook.done": ("runbook done", "#555555", ":"),
    "fault.reverting": ("revert", "#1f5fa8", "-."),
}


def _spans(samples: Sequence[dict[str, Any]], t0: float) -> tuple[list[Any], list[Any]]:
    """(healthy spans, failed spans) as (start, width) pairs: a sample stands until the next."""
    good: list[tuple[float, float]] = []
    bad: list[tuple[float, float]] = []
    for index, sample in enumerate(samples):
        start = sample["t"] - t0
        end = samples[index + 1]["t"] - t0 if index + 1 < len(samples) else start + 0.2
        (good if sample["ok"] else bad).append((start, max(0.01, end - start)))
    return good, bad


def render_svg(scenario: ScenarioReport, timeline: list[dict[str, Any]]) -> str:
    """The picture for ``scenario`` from its timeline (JSON lines, already parsed)."""
    samples: dict[str, list[dict[str, Any]]] = {}
    events = []
    for line in timeline:
        if "at" not in line:
            continue  # the header
        at = line["at"]["mono_ns"] / 1e9
        if line.get("type") == "sample":
            point = {"t": at, "ok": line["ok"], "detail": line.get("detail", "")}
            samples.setdefault(line["probe"], []).append(point)
        elif line.get("type") == "event":
            events.append((at, line["kind"], line["name"], line.get("attributes", {})))
    everything = [s["t"] for lane in samples.values() for s in lane] + [e[0] for e in events]
    if not everything:
        return ""
    t0 = min(everything)
    load = scenario.load
    rows = 2 if load is not None and load.seconds else 1
    fig, axes = plt.subplots(
        rows, 1, figsize=(10, 0.42 * max(4, len(samples)) + 2.4 * (rows - 1) + 1.2),
        sharex=True, squeeze=False, gridspec_kw={"height_ratios": [max(3, len(samples)), 3][:rows]},
    )  # fmt: skip
    ax = axes[0][0]
    lanes = sorted(samples, key=lambda name: (name == "ledger-canary", name))
    for row, name in enumerate(lanes):
        good, bad = _spans(samples[name], t0)
        ax.broken_barh(good, (row - 0.35, 0.7), facecolors=OK)
        ax.broken_barh(bad, (row - 0.35, 0.7), facecolors=FAILED, hatch="///")
    injected = next((e[0] - t0 for e in events if e[1] == "fault.injected"), None)
    # the probes' figures are labelled under the probes' lanes, above the users' lane
    label_row = len(lanes) - 0.3
    users = scenario.measured.users
    if users is not None and injected is not None:
        lanes.append(USERS_LANE)
        _users_lane(ax, len(lanes) - 1, users, injected, _observation_end(events, t0, everything))
    ax.set_yticks(range(len(lanes)), labels=lanes, fontsize=8)
    ax.set_ylim(-0.8, len(lanes) - 0.2)
    ax.invert_yaxis()
    for at, kind, _name, _attrs in events:
        if kind in MARKERS:
            label, colour, style = MARKERS[kind]
            ax.axvline(at - t0, color=colour, linestyle=style, linewidth=1)
            ax.annotate(label, (at - t0, -0.75), fontsize=7, color=colour, rotation=90,
                        va="top", ha="right")  # fmt: skip
    measured, objective = scenario.measured, scenario.objective
    if injected is not None and measured.rto_s is not None and measured.recovered:
        ax.axvspan(injected, injected + measured.rto_s, color=FAILED, alpha=0.08)
        ax.annotate(f"RTO {measured.rto_s:.2f}s ± {measured.rto_error_s or 0:.2f}s",
                    (injected + measured.rto_s, label_row), fontsize=8,
                    color=FAILED)  # fmt: skip
    if injected is not None and objective is not None and objective.rto_s is not None:
        target_at = injected + objective.rto_s
        if target_at <= max(everything) - t0 + 5:
            ax.axvline(target_at, color="black", linewidth=1.5)
            ax.annotate("RTO target", (target_at, label_row), fontsize=7)
    # acknowledged writes the read-back did not find: marked on the canary's lane
    lost = set(scenario.lost_refs)
    if lost and "ledger-canary" in samples:
        row = lanes.index("ledger-canary")
        # a canary sample's detail is "<outcome> <ref>[: why]"
        refs = [(s["t"], [*s["detail"].split(" "), ""][1].rstrip(":"))
                for s in samples["ledger-canary"]]  # fmt: skip
        xs = [t - t0 for t, ref in refs if ref in lost]
        ax.scatter(xs, [row] * len(xs), marker="x", color="black", s=18, zorder=3,
                   label=f"{len(lost)} acknowledged, then lost")  # fmt: skip
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{scenario.id}: {scenario.verdict}", fontsize=10, loc="left")
    if rows == 2 and load is not None:
        _load_panel(axes[1][0], scenario, t0_offset=_load_offset(timeline, t0))
    axes[-1][0].set_xlabel("seconds since the scenario started")
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def _observation_end(events: list[Any], t0: float, everything: list[float]) -> float:
    """Where the fault's observation ended: its revert, else the last thing seen."""
    revert = next((e[0] - t0 for e in events if e[1] == "fault.reverting"), None)
    return revert if revert is not None else max(everything) - t0


def _users_lane(ax: Any, row: int, users: UsersModel, injected: float, end: float) -> None:
    """Users' lane: served (green) from the fault on, stalls of a second or more red and
    hatched, the users' recovery as a tick with its figure."""
    ax.broken_barh([(injected, max(0.01, end - injected))], (row - 0.35, 0.7), facecolors=OK)
    stalls = [(injected + a, max(0.01, b - a)) for a, b in users.stalls]
    if stalls:
        ax.broken_barh(stalls, (row - 0.35, 0.7), facecolors=FAILED, hatch="\\\\")
    if users.longest_stall_s is not None and users.longest_stall_s >= 1.0:
        ax.annotate(f"stall {users.longest_stall_s:.1f}s", (injected, row + 0.45), fontsize=7)
    if users.recovered and users.rto_s:
        at = injected + users.rto_s
        ax.plot([at, at], [row - 0.45, row + 0.45], color="black", linewidth=1.5)
        ax.annotate(f"users' RTO {users.rto_s:.2f}s", (at, row + 0.45), fontsize=7)


def _load_offset(timeline: list[dict[str, Any]], t0: float) -> float:
    """Load seconds count from the timeline's origin (its header); the picture from
    ``t0``, its first sample or event."""
    header = next((line for line in timeline if line.get("type") == "timeline"), None)
    if header is None:
        return 0.0
    return t0 - float(header["origin"]["mono_ns"]) / 1e9


def _load_panel(ax: Any, scenario: ScenarioReport, t0_offset: float) -> None:
    load = scenario.load
    assert load is not None
    xs = [s.t_s - t0_offset for s in load.seconds]
    ax.bar(xs, [s.requests for s in load.seconds], width=0.9, color="#7a9cc6", label="requests/s")
    ax.bar(xs, [s.failures for s in load.seconds], width=0.9, color=FAILED, hatch="xx",
           label="failures/s")  # fmt: skip
    for phase in load.summary.phases:
        ax.axvspan(phase.start_s - t0_offset, phase.end_s - t0_offset,
                   color=PHASE_SHADES.get(phase.phase, "#f0f0f0"), zorder=-1)  # fmt: skip
    ax.set_ylabel("requests / s", fontsize=8)
    p95 = [(x, s.p95_ms) for x, s in zip(xs, load.seconds, strict=True) if s.p95_ms is not None]
    if p95:
        twin = ax.twinx()
        twin.plot([x for x, _ in p95], [v for _, v in p95], color="black", linewidth=1,
                  label="p95 ms")  # fmt: skip
        twin.set_ylabel("p95 ms", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"load: {load.profile}", fontsize=9, loc="left")
