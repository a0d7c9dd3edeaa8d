"""Every wait has a bound: a hung platform call, a hung probe, a hung Locust and a hung
Azure poller each end within their bound with a clear error or INCONCLUSIVE, and the
fault is still reverted. The hangs are real (an Event never set, SIGSTOP, a process
that ignores SIGINT); where the bound itself is the point, the clock is a FakeClock."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from ledgerdrill.errors import FaultError, RevertError
from ledgerdrill.faults import NodeCrash
from ledgerdrill.load.runner import LoadRun
from ledgerdrill.platforms.azure.lro import OperationJournal, OperationRunner, OperationTimeout
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.platforms.fake import FakePlatform
from ledgerdrill.safety import FaultJournal, Injection, SafetyGuard
from ledgerdrill.safety.bounded import CallTimeout, bounded
from ledgerdrill.targets import load_target
from ledgerdrill.timeline import FakeClock, Timeline

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]
NEVER = threading.Event()  # never set: a call waiting on it hangs for good


# -- a hung platform call --------------------------------------------------------------
def test_bounded_returns_raises_or_times_out() -> None:
    assert bounded(lambda: 7, 1.0, "quick") == 7
    with pytest.raises(ZeroDivisionError):
        bounded(lambda: 1 / 0, 1.0, "broken")
    with pytest.raises(CallTimeout, match=r"hung call did not return within 0\.2 s"):
        bounded(NEVER.wait, 0.2, "hung call")


@pytest.fixture
def lab(tmp_path: Path, fake_target: Any) -> tuple[Any, FakePlatform, FaultJournal, SafetyGuard]:
    path = fake_target(heal="null")
    path.write_text(path.read_text() + "  fault_call_timeout: 300ms\n")
    target = load_target(path)
    platform = FakePlatform("fake-lab", tmp_path / "state.json", target.platform.nodes)  # type: ignore[union-attr]
    return target, platform, FaultJournal(tmp_path / "state"), SafetyGuard(target, platform)


def test_an_inject_that_hangs_is_given_up_and_reverted(lab: Any) -> None:
    _, platform, journal, guard = lab

    class HangsAfterCrashing(NodeCrash):
        def inject(self) -> None:
            super().inject()
            NEVER.wait()  # the platform call never returns

    hangs = HangsAfterCrashing(platform, "node-b")
    with (
        pytest.raises(FaultError, match=r"inject of crash node node-b.*did not return within"),
        Injection(hangs, journal=journal, guard=guard, timeline=Timeline(FakeClock())),
    ):
        pytest.fail("the body must not run when the inject did not finish")
    assert platform.node_state("node-b") is NodeState.RUNNING  # reverted
    # the hung inject may still act later: the entry stays for `ledgerdrill cleanup`
    [entry] = journal.pending()
    assert entry.status == "revert-failed" and "may still take effect" in entry.error


def test_a_revert_that_hangs_is_loud_and_stays_journaled(lab: Any) -> None:
    _, platform, journal, guard = lab

    class HangsOnRevert(NodeCrash):
        def revert(self) -> None:
            NEVER.wait()

    hangs = HangsOnRevert(platform, "node-b")
    with (
        pytest.raises(RevertError, match=r"REVERT FAILED.*did not return within 0\.3 s"),
        Injection(hangs, journal=journal, guard=guard, timeline=Timeline(FakeClock())),
    ):
        pass
    assert [e.status for e in journal.pending()] == ["revert-failed"]


# -- a hung probe, inside a real run ---------------------------------------------------
HUNG_PROBE = """
import threading, pytest
from ledgerdrill.faults import NodeCrash
from ledgerdrill.timeline import Sample

class Hangs:
    name, counts_for_rto = "hung-dependency", True
    def __init__(self, after):
        self.after, self.count = after, 0
    def sample(self, timeline, timeout_s):
        self.count += 1
        if self.count > self.after:
            threading.Event().wait()  # ignores its timeout: blocks for good
        return Sample(self.name, timeline.clock.now(), True, 0.0, "ok")

@pytest.mark.parametrize("after", [0, 5])
def test_node_crash(drill, platform, after):
    drill.watch(Hangs(after))
    drill.steady_state()
    with drill.inject(NodeCrash(platform, node="node-b")):
        drill.wait_for_recovery()
"""


def test_a_hung_probe_never_hangs_the_run(pytester: pytest.Pytester, fake_target: Any) -> None:
    text = fake_target().read_text().replace(
        "  node-crash: {recovery_timeout: 3s, params: {node: node-b}}\n",
        "  node-crash[0]: {recovery_timeout: 3s}\n  node-crash[5]: {recovery_timeout: 3s}\n",
    )
    (pytester.path / "target.yaml").write_text(text)
    pytester.makepyfile(test_hung=HUNG_PROBE)
    # in a subprocess with a timeout: a regression fails here instead of hanging the suite
    result = pytester.runpytest_subprocess(
        "--target=target.yaml", "-p", "no:cacheprovider", "-rfs", timeout=120
    )
    result.assert_outcomes(skipped=1, failed=1)
    # hung from the start: the gate (300 ms) sees every tick after the timeout without an
    # answer, and injects nothing
    result.stdout.fnmatch_lines(
        ["*node-crash?0? INCONCLUSIVE*probe hung-dependency failing: no answer*has not returned*"]
    )
    # hung mid-fault: its unanswered samples are failures: not recovered, and it says why
    result.stdout.fnmatch_lines(["*node-crash?5? FAIL*not recovered within 3.0s*"])
    [report] = (pytester.path / "reports").glob("*/report.json")
    scenarios = {s["id"]: s for s in json.loads(report.read_text())["scenarios"]}
    mid = scenarios["node-crash[5]"]
    kinds = [e["kind"] for e in mid["events"]]
    assert "fault.injected" in kinds and "fault.reverted" in kinds
    assert "recovery.timeout" in kinds
    [hung] = [p for p in mid["probes"] if p["probe"] == "hung-dependency"]
    assert not hung["recovered"] and hung["impact_seen"]
    assert not [e for e in scenarios["node-crash[0]"]["events"] if e["kind"] == "fault.injected"]
    state = json.loads((pytester.path / "state.json").read_text())
    assert [s for _, _, s in state["log"]] == ["stopped", "running"]


def test_a_late_call_makes_every_tick_a_failure_and_sampling_resumes_after_it(
    tmp_path: Path,
) -> None:
    from ledgerdrill.probes.base import ProbeSampler
    from ledgerdrill.timeline import Sample, SystemClock

    release = threading.Event()
    calls: list[int] = []

    class Sticky:
        name, counts_for_rto = "sticky", True

        def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
            calls.append(1)
            if len(calls) == 2:
                release.wait()  # the second call hangs until released
            return Sample(self.name, timeline.clock.now(), True, 0.0, "ok")

    timeline = Timeline(SystemClock())
    sampler = ProbeSampler(Sticky(), timeline, interval_s=0.05, timeout_s=0.05).start()
    deadline = threading.Event()
    while len([s for s in timeline.samples("sticky") if not s.ok]) < 5:
        assert not deadline.wait(0.05) and len(timeline.samples("sticky")) < 500
    assert len(calls) == 2  # no new call while the hung one has not returned
    release.set()
    while len(calls) < 4:
        deadline.wait(0.05)
    sampler.stop()
    details = [s.detail for s in timeline.samples("sticky")]
    # every tick while the call was late (past its timeout) is a failure; its answer is
    # kept (this probe dates it when it returned); sampling resumed once it came back
    assert details[0] == "ok"
    waiting = details[1 : details.index("ok", 1)]
    assert len(waiting) >= 5 and all("has not returned" in d for d in waiting)
    assert details[-1] == "ok"


# -- a hung Locust -----------------------------------------------------------------------
def fake_python(folder: Path, body: str) -> Path:
    """Stands in for ``python -m locust``: a process that misbehaves as told."""
    script = folder / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def load_run(tmp_path: Path, python: Path) -> LoadRun:
    return LoadRun(
        REPO / "loadprofiles" / "steady.yaml", url="https://127.0.0.1:9", database="erp",
        login="admin", password="x", ca_bundle=None, out_dir=tmp_path / "load",
        locustfile=REPO / "loadprofiles" / "locustfile.py", python=str(python),
        stop_timeout_s=0.5,
    )  # fmt: skip


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    ("misbehaviour", "body"),
    [
        ("ignores SIGINT and never answers", "trap '' INT TERM\nwhile :; do sleep 1; done"),
        ("is frozen (SIGSTOP)", "exec sleep 3600"),
    ],
)
def test_a_hung_locust_is_stopped_for_sure(tmp_path: Path, misbehaviour: str, body: str) -> None:
    run = load_run(tmp_path, fake_python(tmp_path, body))
    run.start()
    pid = run.pid
    assert pid is not None
    if "SIGSTOP" in misbehaviour:
        os.kill(pid, signal.SIGSTOP)
    run.stop()  # SIGINT is not answered: the process group is killed after 0.5 s
    assert gone(pid), misbehaviour
    result = run.result()
    assert result.ended_by in {"killed", "not-started"}, result.ended_by
    assert not result.seconds  # it measured nothing, and says so rather than invent it


# -- a hung Azure poller -------------------------------------------------------------------
class NeverDonePoller:
    """An ARM operation that stays InProgress: ``wait`` lets the fake clock run."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waited_s = 0.0

    def continuation_token(self) -> str:
        return "token-1"

    def status(self) -> str:
        return "InProgress"

    def done(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> None:
        assert timeout is not None, "a poller waited on without a timeout"
        self.waited_s += timeout
        self.clock.advance(timeout)

    def result(self, timeout: float | None = None) -> Any:
        raise AssertionError("result() of an unfinished operation")


class ScaleSets:
    def __init__(self, poller: NeverDonePoller) -> None:
        self.poller = poller

    def begin_power_off(self, *args: Any, **kwargs: Any) -> NeverDonePoller:
        return self.poller


class Compute:
    def __init__(self, poller: NeverDonePoller) -> None:
        self.virtual_machine_scale_sets = ScaleSets(poller)


def test_an_azure_operation_that_never_finishes_times_out(tmp_path: Path) -> None:
    clock = FakeClock()
    poller = NeverDonePoller(clock)
    events: list[tuple[str, str]] = []
    journal = OperationJournal(tmp_path / "operations.jsonl")
    runner = OperationRunner(
        {"compute": Compute(poller)}, journal, clock,
        lambda kind, name, _attrs: events.append((kind, name)), check_every_s=5.0,
    )  # fmt: skip
    start = clock.now()
    with pytest.raises(OperationTimeout, match=r"not finished within 120 s.*can be resumed"):
        runner.run(
            "compute.virtual_machine_scale_sets.begin_power_off",
            ["rg", "vmss", ["0"]], "power off node aks-np-0", timeout_s=120,
        )  # fmt: skip
    waited = clock.now().seconds_since(start)
    assert 120 <= waited <= 125, waited  # its bound, and not one poll interval more
    [record] = journal.records()
    assert record.status == "timed-out" and record.pending  # left for resume/cleanup
    assert ("azure.operation", "timed-out") in events
    # resuming it later is bounded the same way
    with pytest.raises(OperationTimeout):
        runner.resume(record, timeout_s=30)
