"""Run Locust as a subprocess on a load profile, stop it for sure, and read what it measured.

Locust is never imported here: it monkey-patches the standard library (gevent). It runs
as ``python -m locust`` in its own session (process group), headless, with the profile's
stages handed to the locustfile's ``LoadTestShape`` as a JSON plan. Credentials travel in
the environment, never on the command line.

Stopping: SIGINT to the pid (Locust stops the users, writes its JSON stats and exits; not
SIGTERM, whose handler Locust installs only after a shape has ended), SIGKILL to the whole
process group after ``stop_timeout_s``. ``stop()`` runs at the end of a
``with`` block whatever happens (failure, KeyboardInterrupt), from an ``atexit`` hook, and
from a watchdog thread at ``max_duration_s``. If the harness itself is SIGKILLed, the
locustfile notices its parent is gone and stops within about a second.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import psutil

from ledgerdrill.errors import ConfigError, LedgerdrillError
from ledgerdrill.load.collect import (
    CSV_PREFIX,
    REQUESTS_FILE,
    SECONDS_FILE,
    collect,
    collect_requests,
    read_requests,
)
from ledgerdrill.load.model import PHASES, LoadResult, Phase
from ledgerdrill.load.profile import LoadProfile, load_profile
from ledgerdrill.measure.users import UserRequest
from ledgerdrill.odoo_api import ErpApi
from ledgerdrill.ports import free_port

PLAN_FILE = "plan.json"
PHASE_FILE = "phase.json"  # the drill's phase, for the shape in the Locust master
LOG_FILE = "locust.log"
OUTPUT_FILE = "locust.out"
# Locust itself needs a moment to start and to write its stats at the end
START_GRACE_S = 15.0
# each Locust process appends its per-request record once a second (the locustfile's
# flusher): a reader of the record mid-run sees up to this far behind
LOAD_RECORD_FLUSH_S = 1.0

EndedBy = Literal["profile-end", "stop", "time-limit", "killed", "crashed", "not-started"]


class LoadRunError(LedgerdrillError):
    """Locust could not be started (the profile itself is a ConfigError)."""


def default_locustfile(profile_path: Path) -> Path:
    """``locustfile.py`` next to the profile, else the repository's ``loadprofiles/``."""
    beside = profile_path.parent / "locustfile.py"
    return beside if beside.is_file() else Path("loadprofiles") / "locustfile.py"


class LoadRun:
    """One Locust run. ``start()`` returns once the process is launched; ``stop()`` is
    idempotent and always leaves no Locust process; ``result()`` stops if needed and reads
    the output folder (once)."""

    def __init__(
        self,
        profile_path: Path | str,
        *,
        url: str,
        database: str,
        login: str,
        password: str,
        ca_bundle: Path | str | None,
        out_dir: Path | str,
        max_duration_s: float | None = None,
        scale: float = 1.0,
        locustfile: Path | str | None = None,
        stop_timeout_s: float = 10.0,
        python: str = sys.executable,
        workers: int = 0,
        master_port: int | None = None,
        remote_workers: int = 0,
        follow_drill: bool = False,
        erp_api: ErpApi = "jsonrpc",
        api_key: str = "",
    ) -> None:
        self.profile_path = Path(profile_path)
        if erp_api == "json2" and not api_key:
            raise ConfigError("load over JSON-2 (erp_api: json2) needs an API key")
        self.erp_api: ErpApi = erp_api
        self._api_key = api_key
        # True: the stages follow the drill's phases (enter_phase); the harness ends the
        # load. False: the stages run back to back from Locust's start and then end.
        self.follow_drill = follow_drill
        self.phase_changes: list[tuple[Phase, float]] = []  # (phase, epoch it began)
        if not 0 <= workers <= 64:
            raise ConfigError(f"load workers: {workers!r} (allowed: 0 to 64)")
        # 0: one Locust process; N: a master (it runs the shape and keeps the stats)
        # and N local worker processes. Workers elsewhere connect to master_port.
        self.workers = workers
        self.remote_workers = remote_workers  # started elsewhere; the master waits for them
        # fixed when workers on other machines must find the master; else a free port
        self.master_port: int | None = master_port
        self._workers: list[subprocess.Popen[bytes]] = []
        self.profile: LoadProfile = load_profile(self.profile_path, scale=scale)
        if max_duration_s is not None and max_duration_s <= 0:
            raise ConfigError(f"load max duration: {max_duration_s!r} (allowed: above 0 s)")
        if follow_drill and max_duration_s is None:
            raise ConfigError("a load that follows a drill needs a max duration (it never ends)")
        self.locustfile = Path(locustfile) if locustfile else default_locustfile(self.profile_path)
        if not self.locustfile.is_file():
            raise ConfigError(f"{self.locustfile}: locustfile not found")
        self.url = url
        self._credentials = (database, login, password)
        self.ca_bundle = Path(ca_bundle) if ca_bundle else None
        self.out_dir = Path(out_dir)
        self.max_duration_s = max_duration_s
        self.stop_timeout_s = stop_timeout_s
        self.python = python
        self.run_id = f"ld-{uuid.uuid4().hex[:8]}"
        self._record_offset = 0  # how far requests_so_far has read the record
        self._record_rows: list[UserRequest] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._launched_epoch = 0.0
        self._lock = threading.Lock()
        self._ended_by: EndedBy | None = None
        self._cpu_s: float | None = None
        self._result: LoadResult | None = None
        self._done = threading.Event()

    # -- life cycle --------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self._proc is not None:
            raise LoadRunError("this LoadRun was already started")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        plan = self._plan()
        (self.out_dir / PLAN_FILE).write_text(json.dumps(plan, indent=1), encoding="utf-8")
        for stale in (SECONDS_FILE, REQUESTS_FILE, "locust.json", PHASE_FILE):
            (self.out_dir / stale).unlink(missing_ok=True)
        for stale_path in self.out_dir.glob(f"{REQUESTS_FILE}.waiting.*"):
            stale_path.unlink(missing_ok=True)
        command = [
            self.python, "-m", "locust",
            "-f", str(self.locustfile.resolve()),
            "--headless",
            "--host", self.url,
            "--csv", CSV_PREFIX, "--csv-full-history",
            "--json-file", "locust",
            "--only-summary",
            "--loglevel", "INFO",
            "--logfile", LOG_FILE,
            "--stop-timeout", "2",
            "--exit-code-on-error", "0",
        ]  # fmt: skip
        if self.workers or self.remote_workers:
            self.master_port = self.master_port or free_port()
            expected = self.workers + self.remote_workers
            command += ["--master", "--expect-workers", str(expected),
                        "--master-bind-host", "127.0.0.1",
                        "--master-bind-port", str(self.master_port)]  # fmt: skip
        output = (self.out_dir / OUTPUT_FILE).open("wb")
        try:
            self._launched_epoch = time.time()
            self._proc = subprocess.Popen(
                command,
                cwd=self.out_dir,  # Locust reads ./locust.conf and ./pyproject.toml: ours
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise LoadRunError(f"cannot start Locust ({self.python} -m locust): {exc}") from exc
        finally:
            output.close()
        for index in range(self.workers):
            self._start_worker(index)
        atexit.register(self.stop)
        threading.Thread(target=self._watch, name=f"loadrun-{self.pid}", daemon=True).start()

    def _plan(self) -> dict[str, Any]:
        phase_file = (self.out_dir / PHASE_FILE).resolve() if self.follow_drill else None
        return self.profile.plan(max_duration_s=self.max_duration_s, phase_file=phase_file)

    def enter_phase(self, phase: Phase, since_epoch_s: float | None = None) -> None:
        """Tell the load the drill is in ``phase`` since ``since_epoch_s`` (now): the
        master's shape reads it at its next tick (Locust ticks every second) and sends the
        phase's stage to every worker. The file is replaced whole, never read half-written."""
        if phase not in PHASES:
            raise ValueError(f"phase {phase!r} is not one of {', '.join(PHASES)}")
        if not self.follow_drill:
            return
        since = time.time() if since_epoch_s is None else since_epoch_s
        self.phase_changes.append((phase, since))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        scratch = self.out_dir / f".{PHASE_FILE}.{os.getpid()}"
        scratch.write_text(json.dumps({"phase": phase, "since_epoch_s": since}), encoding="utf-8")
        os.replace(scratch, self.out_dir / PHASE_FILE)

    def phase_began(self, phase: Phase) -> float | None:
        """When the drill last entered ``phase`` (epoch seconds), None if never."""
        return next((at for name, at in reversed(self.phase_changes) if name == phase), None)

    def worker_command(self, master_host: str = "127.0.0.1") -> list[str]:
        """How a worker joins this run's master (locally, or from another machine with
        the same locustfile and environment)."""
        assert self.master_port is not None
        return [self.python, "-m", "locust", "-f", str(self.locustfile.resolve()), "--worker",
                "--master-host", master_host, "--master-port", str(self.master_port)]  # fmt: skip

    def _start_worker(self, index: int) -> None:
        assert self._proc is not None
        log = (self.out_dir / f"worker-{index}.out").open("wb")
        try:
            # its own session, like the master's (a Ctrl-C at the terminal must not reach
            # it half-way); stop() ends each worker's group after the master's
            worker = subprocess.Popen(
                [*self.worker_command(), "--logfile", f"worker-{index}.log"],
                cwd=self.out_dir, env=self._environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            _kill_group(self._proc.pid)
            raise LoadRunError(f"cannot start Locust worker {index}: {exc}") from exc
        finally:
            log.close()
        self._workers.append(worker)

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        database, login, password = self._credentials
        env.update(
            LEDGERDRILL_ERP_URL=self.url,
            LEDGERDRILL_ERP_DB=database,
            LEDGERDRILL_ERP_LOGIN=login,
            LEDGERDRILL_ERP_PASSWORD=password,
            LEDGERDRILL_ERP_API=self.erp_api,
            LEDGERDRILL_ERP_API_KEY=self._api_key,
            LEDGERDRILL_ERP_CA_BUNDLE=str(self.ca_bundle.resolve()) if self.ca_bundle else "",
            LEDGERDRILL_LOAD_PLAN=str((self.out_dir / PLAN_FILE).resolve()),
            LEDGERDRILL_LOAD_SECONDS=str((self.out_dir / SECONDS_FILE).resolve()),
            LEDGERDRILL_LOAD_REQUESTS=str((self.out_dir / REQUESTS_FILE).resolve()),
            LEDGERDRILL_LOAD_RUN_ID=self.run_id,
            LEDGERDRILL_LOAD_PARENT_PID=str(os.getpid()),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _watch(self) -> None:
        """Sample Locust's CPU time while it runs; stop it at the time limit."""
        proc = self._proc
        assert proc is not None
        end_s = self._plan()["end_s"]
        limit = float("inf") if end_s is None else end_s + START_GRACE_S
        try:
            ps = psutil.Process(proc.pid)
        except psutil.Error:
            ps = None
        while proc.poll() is None and not self._done.is_set():
            if ps is not None:
                try:
                    times = ps.cpu_times()
                    self._cpu_s = times.user + times.system
                except psutil.Error:
                    pass
            if time.time() - self._launched_epoch > limit:
                self._stop("time-limit")
                return
            self._done.wait(0.25)

    def stop(self) -> None:
        """Stop Locust (SIGINT, then SIGKILL to its process group) and wait for it."""
        self._stop("stop")

    def _stop(self, reason: EndedBy) -> None:
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            self._done.set()
            if proc.poll() is not None:
                if self._ended_by is None:
                    self._ended_by = "profile-end" if proc.returncode == 0 else "crashed"
                _kill_group(proc.pid)  # anything it left in its group
                self._stop_workers()
                return
            self._sample_cpu(proc.pid)
            ended: EndedBy = reason
            try:
                # SIGINT: while a shape runs, Locust has no SIGTERM handler yet (it installs
                # it after the shape ends) and would die without writing its stats
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                ended = "killed"
            finally:
                # also on KeyboardInterrupt while waiting: never leave it running
                _kill_group(proc.pid)
                _reap(proc, self.stop_timeout_s)
                self._stop_workers()
            self._ended_by = ended

    def _stop_workers(self) -> None:
        """Workers quit when their master tells them; whatever has not, is killed."""
        for worker in self._workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=self.stop_timeout_s)
            _kill_group(worker.pid)
            _reap(worker, self.stop_timeout_s)

    def _sample_cpu(self, pid: int) -> None:
        try:
            times = psutil.Process(pid).cpu_times()
            self._cpu_s = times.user + times.system
        except psutil.Error:
            pass

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the profile to end on its own; True when Locust has exited."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- results ---------------------------------------------------------------------
    def requests_so_far(self) -> list[UserRequest]:
        """The per-request record as written so far, while the load runs (each Locust
        process appends its answered requests once a second; one still waiting is not in
        it yet). Read incrementally: only whole lines appended since the last call are
        parsed, so a drill may ask every second of a long month-end load."""
        path = self.out_dir / REQUESTS_FILE
        try:
            with open(path, "rb") as handle:
                handle.seek(self._record_offset)
                appended = handle.read()
        except OSError:
            appended = b""
        whole = appended[: appended.rfind(b"\n") + 1]  # a line still being written waits
        self._record_offset += len(whole)
        self._record_rows += read_requests(whole.decode("utf-8", errors="replace"))
        # and those still waiting at each process's last flush (no row of their own yet)
        waiting = [UserRequest(start, None, None) for start in self._waiting_now()]
        return sorted([*self._record_rows, *waiting], key=lambda r: r.start)

    def _waiting_now(self) -> list[float]:
        starts: list[float] = []
        for path in self.out_dir.glob(f"{REQUESTS_FILE}.waiting.*"):
            if path.suffix == ".tmp":
                continue
            try:
                found = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # replaced or removed as we read: next time
                continue
            starts += [float(t) for t in found if isinstance(t, int | float)]
        return starts

    def user_requests(self) -> list[UserRequest]:
        """Every request as its user lived it (the locustfile's per-request record);
        stops the run first, so requests still waiting are in it as never answered."""
        self.stop()
        return collect_requests(self.out_dir)

    def result(self) -> LoadResult:
        if self._result is not None:
            return self._result
        self.stop()
        proc = self._proc
        start, seconds, source, locust_requests, locust_failures, errors = collect(
            self.out_dir, self._launched_epoch
        )
        ended_by: EndedBy = self._ended_by or "not-started"
        if start is None:
            ended_by = "not-started"
        self._result = LoadResult(
            profile=self.profile.name,
            started_at=dt.datetime.fromtimestamp(start, tz=dt.UTC) if start else None,
            started_epoch_s=start,
            duration_s=float(len(seconds)),
            startup_s=(start - self._launched_epoch) if start else None,
            seconds=seconds,
            requests=sum(s.requests for s in seconds),
            failures=sum(s.failures for s in seconds),
            locust_requests=locust_requests,
            locust_failures=locust_failures,
            counts_source=source,
            errors=errors,
            exit_code=proc.returncode if proc else None,
            ended_by=ended_by,
            cpu_s=self._cpu_s,
            log_tail=_tail(self.out_dir / OUTPUT_FILE) if ended_by != "profile-end" else "",
        )
        return self._result


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait (bounded) for a process sent SIGKILL. One that survives even that (stuck in
    the kernel) is reported, not waited on forever."""
    try:
        proc.wait(timeout=max(timeout_s, 1.0))
    except subprocess.TimeoutExpired:
        raise LoadRunError(
            f"Locust process {proc.pid} did not exit after SIGKILL within "
            f"{max(timeout_s, 1.0):g} s (stuck in the kernel?); stop it by hand"
        ) from None


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""
