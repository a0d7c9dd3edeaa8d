"""What a lost primary committed that its promoted successor never received, read from
the lost primary's own WAL: the database's witness of a failover's data loss (issue 32).

A promotion starts a new timeline at a *switch point*: the promoted server's history
file (``pg_wal/<new timeline>.history``, last line ``<parent> <switch LSN> <reason>``)
says where. Everything the old primary wrote on the parent timeline at or after that
point never reached the promoted server. ``pg_waldump`` lists the old primary's WAL
records from the switch point on; each ``COMMIT`` record carries its commit timestamp
(PostgreSQL's ``xl_xact_commit.xact_time``, printed as ``desc: COMMIT <timestamp>``),
so the lost transactions and their times come from the database itself, for every
writer -- not only for the harness's canary.

``pg_waldump`` ends with an error at the end of valid WAL (an invalid record length, a
wrong prev-link, a next segment not yet created): that is the normal end of the scan.
A start segment that is missing is not: the WAL is gone and nothing can be said.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ledgerdrill.errors import PlatformError

if TYPE_CHECKING:
    from ledgerdrill.platforms.sandbox.postgres.server import PgServer

WAL_SEGMENT_BYTES = 16 * 1024 * 1024  # initdb's default; the sandbox never changes it
_COMMIT = re.compile(
    r"lsn: (?P<lsn>[0-9A-F]+/[0-9A-F]+),.*desc: COMMIT "
    r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC"
)
_MISSING_FILE = re.compile(r'could not (?:find|locate|open) (?:WAL )?file "(?P<name>[0-9A-F]{24})"')
_NOTHING_AFTER = "could not find a valid record after"


@dataclass(frozen=True)
class Commit:
    lsn: int
    at: datetime  # the commit timestamp in the record, timezone-aware (UTC)


def parse_lsn(text: str) -> int:
    """``"0/612D700"`` -> 0x612D700 (PostgreSQL's ``%X/%X`` form of a 64-bit position)."""
    high, _, low = text.strip().partition("/")
    if not high or not low:
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segment_name(timeline: int, lsn: int) -> str:
    """The WAL file holding ``lsn`` on ``timeline`` (16 MB segments)."""
    segment = lsn // WAL_SEGMENT_BYTES
    per_id = 0x100000000 // WAL_SEGMENT_BYTES
    return f"{timeline:08X}{segment // per_id:08X}{segment % per_id:08X}"


def timeline_switch(history: str) -> tuple[int, int]:
    """The parent timeline and switch point from a timeline history file's last entry."""
    entries = [line.split() for line in history.splitlines() if line.strip()]
    entries = [e for e in entries if not e[0].startswith("#")]
    if not entries or len(entries[-1]) < 2:
        raise ValueError("a timeline history file with no entry")
    return int(entries[-1][0]), parse_lsn(entries[-1][1])


def parse_commits(waldump_output: str) -> list[Commit]:
    """The ``COMMIT`` records of ``pg_waldump`` output run with ``TZ=UTC``, in WAL order
    (aborts, prepared transactions and everything else are not commits a client saw)."""
    found = []
    for match in _COMMIT.finditer(waldump_output):
        at = datetime.fromisoformat(match["at"] + "+00:00")
        found.append(Commit(parse_lsn(match["lsn"]), at))
    return found


def scan_outcome(stderr: str, start_segment: str, segments: list[str]) -> str:
    """``""`` when ``pg_waldump`` stopped at the normal end of the WAL, else why the scan
    says nothing: the start segment is missing while later ones of its timeline exist
    (removed or recycled -- the lost WAL is gone). A start segment missing with nothing
    after it means nothing was written there: the normal end too. ``segments``: the WAL
    file names in the folder."""
    missing = _MISSING_FILE.search(stderr)
    if missing is None or missing["name"] != start_segment:
        return ""
    timeline = start_segment[:8]
    later = [s for s in segments if s[:8] == timeline and s[8:24] > start_segment[8:]]
    if not later:
        return ""
    return f"WAL segment {start_segment} is gone while {later[0]} exists"


def commits_after(server: PgServer, timeline: int, start_lsn: int) -> list[Commit]:
    """The commits ``server`` (stopped, crashed or fenced -- its data folder must not be
    rewound while this runs) wrote on ``timeline`` at or after ``start_lsn``."""
    wal_dir = Path(server.data_dir) / "pg_wal"
    args = [
        str(server.binaries.program("pg_waldump")),
        "--path",
        str(wal_dir),
        "--timeline",
        str(timeline),
        "--start",
        format_lsn(start_lsn),
        "--rmgr",
        "Transaction",
    ]
    try:
        done = subprocess.run(  # noqa: PLW1510 - its exit status is read below
            args,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC"},
            **server.run_as.subprocess_kwargs(),  # type: ignore[call-overload]
        )
    except subprocess.TimeoutExpired as exc:
        raise PlatformError(f"pg_waldump on {server.name} did not finish in 60s") from exc
    if _NOTHING_AFTER in done.stderr:
        return []  # nothing was written after the switch point
    segments = sorted(p.name[:24] for p in wal_dir.iterdir() if len(p.name) >= 24)
    problem = scan_outcome(done.stderr, segment_name(timeline, start_lsn), segments)
    if problem:
        raise PlatformError(f"cannot read {server.name}'s WAL: {problem}")
    return [c for c in parse_commits(done.stdout) if c.lsn >= start_lsn]
