"""Planted secrets reach no output: not the terminal (stdout, stderr, DEBUG logs shown
live), not JUnit XML, not the journal, reports, timelines or evidence, not any file a
run leaves anywhere under its working folder.

Secrets are planted where real ones live: environment variables a probe catalogue names
(``url_env``, ``dsn_env``, ``password_env``) -- a Redis token, a PostgreSQL DSN with its
password, an ERP password -- and, as a careless user would, a DSN and a URL with a
password in the target file's description. One game day on the fake platform runs with
a real, password-protected Redis (healthy probes: the fault is injected and reverted,
everything is written); another with every secret-bearing probe failing against closed
ports (error messages are where secrets usually leak). Then the report commands run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledgerdrill.platforms.sandbox.redis_component import redis_server_binary

REDIS_TOKEN = "tok-Planted-7f3a9c"
DSN_PASSWORD = "dsnPw-Planted-41bd"
ERP_PASSWORD = "erpPw-Planted-90ce"
FILE_PASSWORD = "filePw-Planted-c2e1"
SECRETS = [REDIS_TOKEN, DSN_PASSWORD, ERP_PASSWORD, FILE_PASSWORD]

SCENARIO = """
import pytest
from ledgerdrill.faults import NodeCrash

@pytest.mark.requires("NodeControl")
def test_node_crash(drill, platform):
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node=drill.param("node"))):
        drill.wait_for_recovery()
"""
HEALTHY = """
probes:
  - {name: cache, kind: redis, url_env: LD_TEST_REDIS_URL, timeout: 500ms}
"""
FAILING = """
probes:
  - {name: cache, kind: redis, url_env: LD_TEST_DEAD_REDIS_URL, timeout: 300ms}
  - {name: ledger-db, kind: postgres-write, dsn_env: LD_TEST_PG_DSN, timeout: 300ms}
  - {name: erp, kind: odoo-read, url: "https://127.0.0.1:{dead}", database: erp,
     login: admin, password_env: LD_TEST_ERP_PASSWORD, ca_bundle: null, timeout: 300ms}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server that requires the planted token (its folder is not scanned:
    it is the one place the token must be)."""
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", REDIS_TOKEN, "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://:{REDIS_TOKEN}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def prepare(folder: Path, fake_target: Any, catalogue: str) -> None:
    text = fake_target().read_text()
    text = text.replace("probes: {interval: 100ms,", "probes: {catalogue: catalogue.yaml, interval: 100ms,")
    # planted the careless way: a DSN and a URL with passwords, in the target file itself
    text += (
        f"description: 'ledger postgresql://erp:{FILE_PASSWORD}@db.example:5432/ledger "
        f"host=db password={FILE_PASSWORD} sso https://svc:{FILE_PASSWORD}@sso.example/'\n"
    )
    (folder / "target.yaml").write_text(text)
    (folder / "catalogue.yaml").write_text(catalogue.replace("{dead}", str(free_port())))
    (folder / "scenarios").mkdir(exist_ok=True)
    (folder / "scenarios" / "test_node.py").write_text(SCENARIO)


def run_cli(folder: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ledgerdrill.cli", *args], cwd=folder, env=env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return f"$ ledgerdrill {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_no_planted_secret_reaches_any_output(
    tmp_path: Path, fake_target: Any, redis_url: str
) -> None:
    env = {
        **os.environ,
        "LD_TEST_REDIS_URL": redis_url,
        "LD_TEST_DEAD_REDIS_URL": f"redis://:{REDIS_TOKEN}@127.0.0.1:{free_port()}/0",
        "LD_TEST_PG_DSN": f"postgresql://erp:{DSN_PASSWORD}@127.0.0.1:{free_port()}/ledger",
        "LD_TEST_ERP_PASSWORD": ERP_PASSWORD,
    }
    work = tmp_path / "work"
    work.mkdir()
    gameday = ["gameday", "--target", "target.yaml", "--scenarios", "scenarios",
               "--reports-dir", "reports"]  # fmt: skip
    # every log record of every library, shown live on the terminal
    verbose = ["--", "-o", "log_cli=true", "--log-cli-level=DEBUG", "-rA"]
    terminal = []

    prepare(work, fake_target, HEALTHY)
    terminal.append(run_cli(work, env, "plan", "--target", "target.yaml",
                            "--scenarios", "scenarios", "--reports-dir", "reports"))  # fmt: skip
    healthy = run_cli(work, env, *gameday, "--junitxml", "junit-healthy.xml", *verbose)
    terminal.append(healthy)
    # the healthy run really ran: the fault was injected and reverted, all was written
    assert "node-crash" in healthy and "report: reports/" in healthy, healthy
    assert list((work / "reports").glob("*/evidence/journal.json")), healthy
    assert "fault.reverted" in "".join(
        p.read_text() for p in (work / "reports").glob("*/timelines/*.jsonl")
    )

    prepare(work, fake_target, FAILING)
    failing = run_cli(work, env, *gameday, "--junitxml", "junit-failing.xml", *verbose)
    terminal.append(failing)
    # the error paths were taken: every secret-bearing probe failed and said why
    assert "steady-state gate failed" in failing and "ledger-db" in failing, failing

    for words in (["report"], ["report", "html"], ["report", "verify"], ["report", "trend"],
                  ["cleanup"]):  # fmt: skip
        extra = [] if words == ["cleanup"] else ["--reports-dir", "reports"]
        terminal.append(run_cli(work, env, *words, *extra))

    everything = "\n".join(terminal)
    assert not leaks(everything), [line for line in everything.splitlines() if leaks(line)][:5]
    scanned = 0
    planted = {work / "target.yaml"}  # the one file the user wrote the password into
    for path in sorted(work.rglob("*")):
        if path.is_file() and path not in planted:
            text = path.read_bytes().decode("utf-8", errors="replace")
            assert not leaks(text), f"{path.relative_to(work)} holds {leaks(text)}"
            scanned += 1
    kinds = {p.suffix for p in work.rglob("*") if p.is_file()}
    # what was scanned: JUnit, the reports, timelines, evidence, history, trend picture
    assert {".xml", ".json", ".jsonl", ".html", ".md"} <= kinds, kinds
    assert scanned >= 20, scanned
