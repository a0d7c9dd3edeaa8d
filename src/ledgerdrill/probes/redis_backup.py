"""The Redis probe (ping, set/get latency) and the backup freshness probe (age of the
newest base backup and of the last archived WAL segment -- what finance teams ask
first after a restore: how old was the backup we could have used?)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ledgerdrill.timeline import Sample, Timeline


class RedisProbe:
    def __init__(self, name: str, url: str, *, counts_for_rto: bool = False) -> None:
        self.name = name
        self.url = url  # holds the password: never in a detail
        self.counts_for_rto = counts_for_rto
        self._key = f"ledgerdrill:probe:{uuid.uuid4().hex[:8]}"
        self._client: redis.Redis | None = None

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        # one kept-open connection; redis-py's default retries would turn a dead server
        # into seconds of waiting, so none: a failure is this sample's answer
        client = self._client or redis.Redis.from_url(
            self.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        self._client = client
        metrics: dict[str, float] = {}
        try:
            began = time.perf_counter()
            client.ping()
            metrics["ping_s"] = round(time.perf_counter() - began, 5)
            began = time.perf_counter()
            client.set(self._key, "1", ex=60)
            value = client.get(self._key)
            metrics["set_get_s"] = round(time.perf_counter() - began, 5)
        except redis.RedisError as exc:
            client.close()
            self._client = None  # reconnect next time, as a fresh client would
            took = timeline.clock.now().seconds_since(start)
            return Sample(self.name, start, False, took, f"{type(exc).__name__}: {exc}")
        took = timeline.clock.now().seconds_since(start)
        ok = value == b"1"
        return Sample(self.name, start, ok, took, "ping ok" if ok else "set/get mismatch", metrics)


class BackupFreshnessProbe:
    """Ages read from the backup store itself (file times), not from a log of what
    the backup job believes it did."""

    def __init__(
        self,
        name: str,
        base_dir: Path,
        wal_dir: Path,
        *,
        max_base_age_s: float = 86_400.0,
        max_wal_age_s: float = 3_600.0,
        counts_for_rto: bool = False,
    ) -> None:
        self.name = name
        self.base_dir = base_dir
        self.wal_dir = wal_dir
        self.max_base_age_s = max_base_age_s
        self.max_wal_age_s = max_wal_age_s
        self.counts_for_rto = counts_for_rto

    @staticmethod
    def _newest(folder: Path, *, dirs: bool) -> float | None:
        # os.scandir: the listing brings each entry's type (no stat for is_dir), so one
        # stat per entry for its time -- a WAL archive holds hundreds of files, read at
        # every sample (issue 38's profile: 25,000 stats in 20 s at 5 Hz)
        times: list[float] = []
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    if entry.name.startswith(".") or entry.is_dir() != dirs:
                        continue
                    with contextlib.suppress(FileNotFoundError):  # recycled meanwhile
                        times.append(entry.stat().st_mtime)
        except OSError:
            return None
        return max(times) if times else None

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        now = time.time()
        base = self._newest(self.base_dir, dirs=True)
        wal = self._newest(self.wal_dir, dirs=False)
        took = timeline.clock.now().seconds_since(start)
        if base is None or wal is None:
            missing = "base backup" if base is None else "archived WAL"
            return Sample(self.name, start, False, took, f"no {missing} found")
        base_age, wal_age = now - base, now - wal
        metrics = {"base_backup_age_s": round(base_age, 1), "wal_archive_age_s": round(wal_age, 1)}
        ok = base_age <= self.max_base_age_s and wal_age <= self.max_wal_age_s
        detail = f"base backup {base_age:.0f}s old, last WAL archived {wal_age:.0f}s ago"
        return Sample(self.name, start, ok, took, detail, metrics)
