"""Users' figures against an independent client (issue 28's witness), on real sandboxes.

``benchmarks/users_witness.py`` runs node-freeze once per entry-point style, each on a
sandbox of its own, while a plain httpx client -- not Locust, not the probes -- calls
the ERP through the entry point. Naive Traefik (no forwarding timeouts, a slower health
check) leaves users hanging on the frozen replica: the verdict must FAIL naming the users,
the users' longest wait must agree with the client's stall within a second, and so must
their longest stall when every user was held at once. Hardened Traefik
bounds the wait: PASS, every wait within the bound, users' RTO within a second of the
probes', and the same agreement whenever both the users and the client met the frozen
replica. About a minute (two sandboxes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_users_stall_agrees_with_an_independent_client(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "users_witness.py"),
         "--styles", "naive,hardened", "--json", str(rows_file)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    out = done.stdout + done.stderr
    print(out)  # the table, for the CI log
    rows = {row["style"]: row for row in json.loads(rows_file.read_text())}
    naive, hardened = rows["naive"], rows["hardened"]
    # naive (issue 28's starting point: no forwarding timeouts, the health check it had
    # then): a user held by the frozen replica waits as long as the client, one user
    # too; the verdict FAILs naming the users while the probes alone would pass
    assert naive["client_stall_s"] > 2.0, naive
    assert naive["users_longest_wait_s"] is not None, naive
    assert abs(naive["users_longest_wait_s"] - naive["client_stall_s"]) <= 1.0, naive
    assert naive["verdict"] == "FAIL", naive
    assert any(
        reason.startswith("users") and (">" in reason or "not recovered" in reason)
        for reason in naive["reasons"]
    ), naive["reasons"]
    # whether *every* user is held at once is a race: each must send into the frozen
    # replica before the health check takes it out (0.5-0.9 s). When they all were (two
    # runs in three here), nobody got through: the users' longest stall is the client's
    # stall too, and the verdict names it
    stall = naive["users_stall_s"]
    if stall is not None and stall >= 2.0:
        assert abs(stall - naive["client_stall_s"]) <= 1.0, naive
        assert any(reason.startswith("users' longest stall") and ">" in reason
                   for reason in naive["reasons"]), naive["reasons"]  # fmt: skip
    else:
        print(f"naive: not every user was held at once (users' stall {stall}); compared by waits")
    # hardened: bounded waits (the forwarding timeout), and a PASS; users' RTO within a
    # second of the probes' (issue 28) -- both date trouble by its send, and the frozen
    # replica leaves the rotation before every user is held by it
    assert hardened["verdict"] == "PASS", hardened
    assert hardened["users_rto_s"] is not None and hardened["probes_rto_s"] is not None
    assert abs(hardened["users_rto_s"] - hardened["probes_rto_s"]) <= 1.0, hardened
    # the bound holds for both; they agree when both met the frozen replica. In one CI run
    # of 38217a9 only the client did (its wait 2.01 s, the users' longest 0.08 s: the
    # replica was out of rotation before any user's request reached it) -- different
    # users, neither figure wrong; the benchmark then says "not compared"
    wait, client = hardened["users_longest_wait_s"], hardened["client_stall_s"]
    assert wait is not None and wait <= 3.0 and client <= 3.0, hardened
    if (wait >= 1.0) == (client >= 1.0):
        assert hardened["compared"] and abs(wait - client) <= 1.0, hardened
    else:
        assert not hardened["compared"], hardened
    assert naive["compared"], naive
    assert out.strip().splitlines()[-1].endswith("PASS"), out[-2000:]
