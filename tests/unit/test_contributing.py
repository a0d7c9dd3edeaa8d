"""CONTRIBUTING.md's worked examples, kept true.

"Add a fault": every block marked ``<!-- example add-a-fault: FILE, WHERE -->`` is applied
to a copy of the source tree (WHERE: ``a new file``, ``at the end``, or ``before "LINE"``);
the files it touched must be exactly the four the issue allows (the fault module, its
capability protocol's module, the backend that implements it, one scenario); then the
scenario runs as a user runs it, on the fake platform, with the copy first on the path:
its RTO must be judged and met with the fault verified and reverted (RPO stays unmeasured:
the fake has no ledger for a canary), and ``cleanup`` must know the new kind
(registered without touching anything else). "Add a probe kind": its block runs as is."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "CONTRIBUTING.md"
MARK = re.compile(r"<!-- example ([\w-]+): (.*?) -->\n```python\n(.*?)```", re.DOTALL)

TARGET = """
name: contributing-example
environment: sandbox
platform: {kind: fake, state_file: state.json}
tiers:
  portals: {rto: 5s, rpo: 0s}
default_tier: portals
probes: {interval: 100ms, steady_state: 300ms, settle_timeout: 1s}
stability: {samples: 3, duration: 300ms}
scenarios:
  cache-freeze: {recovery_timeout: 3s, observe_after_recovery: 0.5s}
safety:
  allow: {caches: ["cache"]}
"""


def blocks(example: str) -> list[tuple[str, str]]:
    found = [(where, code) for name, where, code in MARK.findall(GUIDE.read_text()) if name == example]
    assert found, f"CONTRIBUTING.md has no blocks marked 'example {example}'"
    return found


def apply(root: Path, where: str, code: str) -> str:
    """Apply one block to the copy under ``root``; returns the file it touched."""
    relative, _, how = where.partition(", ")
    path = root / relative
    if how == "a new file":
        assert not path.exists(), f"{relative} already exists"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    elif how == "at the end":
        path.write_text(path.read_text().rstrip("\n") + "\n\n\n" + code)
    elif how.startswith("before "):
        anchor = json.loads(how.removeprefix("before "))
        text = path.read_text()
        lines = text.splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.startswith(anchor)]
        assert len(at) == 1, f"{relative}: anchor {anchor!r} found {len(at)} times"
        path.write_text("".join(lines[: at[0]]) + code + "".join(lines[at[0] :]))
    else:
        raise AssertionError(f"unknown place {how!r} in {where!r}")
    return relative


def test_adding_a_fault_touches_four_files_and_the_scenario_runs(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (copy / "scenarios").mkdir()
    touched = {apply(copy, where, code) for where, code in blocks("add-a-fault")}
    assert touched == {
        "src/ledgerdrill/faults/cache_freeze.py",  # the fault
        "src/ledgerdrill/platforms/base.py",  # its capability protocol
        "src/ledgerdrill/platforms/fake.py",  # the backend that implements it
        "scenarios/test_cache_freeze.py",  # one scenario
    }, touched
    # the example is code we would accept: strictly typed, like the rest of src/
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
         "--no-incremental", "src/ledgerdrill/faults/cache_freeze.py",
         "src/ledgerdrill/platforms/fake.py", "scenarios/test_cache_freeze.py"],
        cwd=copy, env={**os.environ, "MYPYPATH": str(copy / "src")},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stdout[-3000:]
    linted = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml"),
         "src/ledgerdrill/faults/cache_freeze.py", "src/ledgerdrill/platforms/base.py",
         "src/ledgerdrill/platforms/fake.py", "scenarios/test_cache_freeze.py"],
        cwd=copy, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout[-3000:]
    (copy / "target.yaml").write_text(textwrap.dedent(TARGET))
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    known = subprocess.run(
        [sys.executable, "-c",
         "import ledgerdrill, ledgerdrill.faults as f; print(ledgerdrill.__file__);"
         " print(' '.join(f.registered_faults()))"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert known[0].startswith(str(copy)), known  # the copy, not the repository, is used
    assert "cache-freeze" in known[1].split(), known  # cleanup can rebuild it
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/test_cache_freeze.py", "--target=target.yaml",
         "-p", "no:cacheprovider", "-q"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    report = json.loads(next((copy / "reports").glob("*/report.json")).read_text())
    scenario = report["scenarios"][0]
    assert scenario["id"] == "cache-freeze", scenario["id"]
    # judged on its RTO; the fake platform has no ledger to write a canary to, so RPO is
    # the one thing left unmeasured (and said so), as on any target without a canary
    assert scenario["verdict"] == "INCONCLUSIVE", scenario["reasons"]
    assert scenario["reasons"] == ["RPO not measured: no ledger canary read-back"]
    assert [c["passed"] for c in scenario["checks"] if c["name"] == "rto"] == [True]
    kinds = [e["kind"] for e in scenario["events"]]
    assert "fault.verified" in kinds and "fault.reverted" in kinds, kinds
    state = json.loads((copy / "state.json").read_text())
    assert state.get("cache_frozen") is False  # thawed: the platform as it was found


def test_the_probe_example_runs_as_written() -> None:
    (_, code), = blocks("add-a-probe")
    exec(compile(code, "CONTRIBUTING.md (add-a-probe)", "exec"), {"__name__": "example"})
