"""Reading Locust's outputs: exact per-second counts, torn lines, the CSV fallback."""

from __future__ import annotations

import json

from ledgerdrill.load.collect import collect, read_history_csv, read_listener, read_locust_json

HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,Total Failure Count\n"
)


def test_locust_json_per_second_counts_sum_to_its_totals():
    data = [
        {"name": "a", "num_requests": 5, "num_failures": 1,
         "num_reqs_per_sec": {"100": 2, "101": 3}, "num_fail_per_sec": {"101": 1}},
        {"name": "b", "num_requests": 2, "num_failures": 0, "num_reqs_per_sec": {"101": 2},
         "num_fail_per_sec": {}},
    ]  # fmt: skip
    requests, failures, per_second = read_locust_json(data)
    assert (requests, failures) == (7, 1)
    assert per_second == {100: (2, 0), 101: (5, 1)}


def test_history_csv_differences_ignore_the_lagging_rate_column():
    text = HEADER + (
        "100,1,,Aggregated,99.0,0,4,0\n100,1,GET,/x,99.0,0,4,0\n"
        "101,1,,Aggregated,99.0,0,10,1\n103,1,,Aggregated,1.0,0,12,1\n"
    )
    assert read_history_csv(text) == {100: (4, 0), 101: (6, 1), 103: (2, 0)}


def test_listener_file_survives_a_torn_last_line(tmp_path):
    lines = [
        json.dumps({"event": "start", "epoch_s": 99.5}),
        json.dumps({"t": 100, "requests": 3, "failures": 1, "hist": {"5": 2, "120": 1}}),
        json.dumps({"t": 102, "requests": 1, "failures": 0, "hist": {"7": 1}}),
        '{"t": 103, "requ',
    ]
    start, counts, _hists = read_listener("\n".join(lines))
    assert start == 99.5 and counts == {100: (3, 1), 102: (1, 0)}
    (tmp_path / "seconds.jsonl").write_text("\n".join(lines))
    start, seconds, source, *_ = collect(tmp_path, 99.0)
    assert source == "listener"
    assert [(s.t_s, s.requests) for s in seconds] == [(0, 0), (1, 3), (2, 0), (3, 1)]
    assert seconds[1].p95_ms == 120
