"""``exec_in_pod`` against the fake API server's ``pods/exec`` (the official client's
WebSocket transport, end to end): output, exit codes, and what the API server refuses."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.kubernetes.podexec import exec_in_pod
from ledgerdrill.testing.fakeapi.podexec import ExecCall, ExecOutcome

sys.path.insert(0, str(Path(__file__).parent))
from fake_cluster import fake_cluster

NS = "ledgerdrill"


def _db_pod(fake) -> str:  # type: ignore[no-untyped-def]
    pods = fake.store.list("core/pods", NS, "cnpg.io/cluster=ledgerdrill-db")
    return str(sorted(p["metadata"]["name"] for p in pods)[0])


def _run_for_real(call: ExecCall) -> ExecOutcome:
    """The command, run on this machine: what the container would have done."""
    done = subprocess.run(list(call.command), capture_output=True, timeout=10, check=False)
    return ExecOutcome(done.stdout, done.stderr, done.returncode)


def test_output_and_exit_codes_come_back_as_the_command_gave_them(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        fake.exec_handler = _run_for_real
        pod = _db_pod(fake)
        script = "import sys; print('out line'); print('err line', file=sys.stderr); sys.exit(3)"
        got = exec_in_pod(platform.kube, NS, pod, "postgres",
                          [sys.executable, "-c", script], timeout_s=10)  # fmt: skip
        assert (got.stdout, got.stderr, got.exit_code) == ("out line\n", "err line\n", 3)
        ok = exec_in_pod(platform.kube, NS, pod, "postgres", ["echo", "a b"], timeout_s=10)
        assert (ok.stdout, ok.exit_code) == ("a b\n", 0)
        # the command reached the container as separate arguments, in order
        assert fake.exec_calls[-1] == ExecCall(NS, pod, "postgres", ("echo", "a b"))


def test_output_larger_than_one_frame_arrives_whole(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        fake.exec_handler = lambda call: ExecOutcome(stdout=b"x" * 200_000 + b"\n")
        got = exec_in_pod(platform.kube, NS, _db_pod(fake), "postgres", ["cat"], timeout_s=10)
        assert got.stdout == "x" * 200_000 + "\n"


def test_a_missing_program_exits_126_as_under_runc_and_a_failed_start_is_an_error(
    tmp_path: Path,
) -> None:
    with fake_cluster(tmp_path) as (fake, platform):  # no handler: the fake runs no programs
        got = exec_in_pod(platform.kube, NS, _db_pod(fake), "postgres", ["psql"], timeout_s=10)
        assert got.exit_code == 126 and '"psql": executable file not found' in got.stderr
        fake.exec_handler = lambda call: ExecOutcome(start_error="container is stopping")
        with pytest.raises(PlatformError, match=r"exec psql in ledgerdrill/.*container is stop"):
            exec_in_pod(platform.kube, NS, _db_pod(fake), "postgres", ["psql"], timeout_s=10)


@pytest.mark.parametrize(
    ("pod", "container", "refusal"),
    [
        ("no-such-pod", "postgres", r"NotFound: pods \"no-such-pod\" not found"),
        (None, "sidecar", r"BadRequest: container sidecar is not valid for pod"),
    ],
)
def test_what_the_api_server_refuses_is_said(
    tmp_path: Path, pod: str | None, container: str, refusal: str
) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        fake.exec_handler = _run_for_real
        with pytest.raises(PlatformError, match=refusal):
            exec_in_pod(platform.kube, NS, pod or _db_pod(fake), container, ["true"],
                        timeout_s=10)  # fmt: skip
        assert fake.exec_calls == []  # refused before anything ran


def test_a_command_that_does_not_end_is_cut_off(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (fake, platform):
        release = threading.Event()

        def hangs(call: ExecCall) -> ExecOutcome:
            release.wait(10)
            return ExecOutcome()

        fake.exec_handler = hangs
        try:
            with pytest.raises(PlatformError, match=r"no end after 0.5s"):
                exec_in_pod(platform.kube, NS, _db_pod(fake), "postgres", ["sleep"],
                            timeout_s=0.5)  # fmt: skip
        finally:
            release.set()
