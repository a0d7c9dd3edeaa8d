"""Read what a Locust run left in its output folder and build a :class:`LoadResult`.

Sources, in the order counts are taken from:

1. ``locust.json`` (``--json-file``): per entry, ``num_reqs_per_sec`` / ``num_fail_per_sec``
   keyed by ``int(time.time())`` at completion: Locust's own exact per-second counts.
   Written only when Locust shuts down cleanly.
2. ``seconds.jsonl`` (the locustfile's request listener): the same per-second counts plus a
   latency histogram per second, appended every second, so it survives a SIGKILL up to
   the last second.
3. ``locust_stats_history.csv`` (``--csv-full-history``): differences between consecutive
   "Aggregated" rows' cumulative counts; only the total is exact (the writer's rows come
   about once a second, not on second boundaries).

Latency percentiles always come from (2); the "Requests/s" column is never used (it is a
10-second moving average).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from pathlib import Path
from typing import Any

from ledgerdrill.load.model import CountsSource, LoadError, SecondStats
from ledgerdrill.load.phases import percentile
from ledgerdrill.measure.users import OUTCOMES, UserRequest

SECONDS_FILE = "seconds.jsonl"
REQUESTS_FILE = "requests.jsonl"
JSON_FILE = "locust.json"
CSV_PREFIX = "locust"

PerSecond = dict[int, tuple[int, int]]


def read_listener(text: str) -> tuple[float | None, PerSecond, dict[int, dict[int, int]]]:
    """(start epoch, per-second (requests, failures), per-second histogram) from JSON lines.
    A torn last line (the process was killed mid-write) is skipped."""
    start: float | None = None
    counts: PerSecond = {}
    hists: dict[int, dict[int, int]] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        if row.get("event") == "start":
            start = float(row["epoch_s"]) if start is None else start
            continue
        t = int(row["t"])
        requests, failures = counts.get(t, (0, 0))
        counts[t] = (requests + int(row["requests"]), failures + int(row["failures"]))
        hist = hists.setdefault(t, {})
        for value, count in dict(row.get("hist") or {}).items():
            key = int(float(value))
            hist[key] = hist.get(key, 0) + int(count)
    return start, counts, hists


def read_requests(text: str) -> list[UserRequest]:
    """The per-request record (``requests.jsonl``): ``{"s": sent, "e": answered | null,
    "o": outcome | null, "st": stage index, "p": pid}`` per line, epoch seconds. A torn or
    malformed line (a process killed mid-write) is skipped, never guessed at."""
    found: list[UserRequest] = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
            start, end, outcome = float(row["s"]), row["e"], row["o"]
            if outcome is not None and outcome not in OUTCOMES:
                continue
            stage, process = row.get("st"), row.get("p")
            found.append(
                UserRequest(
                    start,
                    None if end is None else float(end),
                    outcome,
                    stage=stage if isinstance(stage, int) else None,
                    process=process if isinstance(process, int) else None,
                )
            )
        except (ValueError, TypeError, KeyError):
            continue
    return sorted(found, key=lambda r: r.start)


def collect_requests(out_dir: Path) -> list[UserRequest]:
    return read_requests(_text(out_dir / REQUESTS_FILE))


def read_locust_json(data: Any) -> tuple[int, int, PerSecond]:
    """(total requests, total failures, per-second counts) from Locust's JSON stats."""
    total_requests = total_failures = 0
    per_second: PerSecond = {}
    for entry in data if isinstance(data, list) else []:
        total_requests += int(entry.get("num_requests", 0))
        total_failures += int(entry.get("num_failures", 0))
        for key, count in (entry.get("num_reqs_per_sec") or {}).items():
            requests, failures = per_second.get(int(key), (0, 0))
            per_second[int(key)] = (requests + int(count), failures)
        for key, count in (entry.get("num_fail_per_sec") or {}).items():
            requests, failures = per_second.get(int(key), (0, 0))
            per_second[int(key)] = (requests, failures + int(count))
    return total_requests, total_failures, per_second


def read_history_csv(text: str) -> PerSecond:
    """Per-row increments of the Aggregated cumulative counts, keyed by the row's second."""
    per_second: PerSecond = {}
    last = (0, 0)
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("Name") != "Aggregated":
            continue
        try:
            now = (int(row["Total Request Count"]), int(row["Total Failure Count"]))
            t = int(row["Timestamp"])
        except (KeyError, TypeError, ValueError):
            continue
        requests, failures = per_second.get(t, (0, 0))
        per_second[t] = (requests + now[0] - last[0], failures + now[1] - last[1])
        last = now
    return per_second


def read_failures_csv(text: str) -> list[LoadError]:
    errors = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            errors.append(
                LoadError(
                    name=f"{row.get('Method', '')} {row.get('Name', '')}".strip(),
                    error=str(row.get("Error", ""))[:300],
                    occurrences=int(row.get("Occurrences", 0)),
                )
            )
        except (TypeError, ValueError):
            continue
    return sorted(errors, key=lambda e: -e.occurrences)[:20]


def series(
    start_epoch: float,
    counts: PerSecond,
    hists: dict[int, dict[int, int]],
    end_epoch: float | None = None,
) -> list[SecondStats]:
    """A dense series, one entry per second from the start's second to the last with data
    (or ``end_epoch``); seconds with nothing get zeros."""
    first = math.floor(start_epoch)
    keys = [t for t in (*counts, *hists) if t >= first]
    last = max(keys, default=first - 1)
    if end_epoch is not None:
        last = max(last, math.ceil(end_epoch) - 1)
    out = []
    for t in range(first, last + 1):
        requests, failures = counts.get(t, (0, 0))
        hist = hists.get(t, {})
        out.append(
            SecondStats(
                t_s=t - first,
                at=dt.datetime.fromtimestamp(t, tz=dt.UTC),
                requests=max(0, requests),
                failures=max(0, min(failures, requests)),
                p50_ms=percentile(hist, 0.50),
                p95_ms=percentile(hist, 0.95),
                latency_hist_ms=hist,
            )
        )
    return out


def collect(
    out_dir: Path, launched_epoch: float
) -> tuple[float | None, list[SecondStats], CountsSource, int | None, int | None, list[LoadError]]:
    """(start epoch, series, counts source, Locust's JSON totals, errors) from ``out_dir``."""
    start, listener_counts, hists = read_listener(_text(out_dir / SECONDS_FILE))
    locust_requests = locust_failures = None
    counts: PerSecond = {}
    source: CountsSource = "none"
    json_text = _text(out_dir / JSON_FILE)
    if json_text:
        try:
            locust_requests, locust_failures, counts = read_locust_json(json.loads(json_text))
            source = "locust-json"
        except (ValueError, TypeError, AttributeError):
            counts = {}
    if source == "none" and listener_counts:
        counts, source = listener_counts, "listener"
    if source == "none":
        counts = read_history_csv(_text(out_dir / f"{CSV_PREFIX}_stats_history.csv"))
        source = "csv-history" if counts else "none"
    errors = read_failures_csv(_text(out_dir / f"{CSV_PREFIX}_failures.csv"))
    if start is None:
        if not counts:
            return None, [], source, locust_requests, locust_failures, errors
        start = min(*counts, launched_epoch)
    return (
        start,
        series(start, counts, hists),
        source,
        locust_requests,
        locust_failures,
        errors,
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
