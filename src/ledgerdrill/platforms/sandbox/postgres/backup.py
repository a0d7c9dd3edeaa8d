"""Base backups and point-in-time restore from the sandbox's "object storage" folder.

``<state>/object-storage/base/<label>/`` holds plain-format base backups (with the WAL
to make each one consistent) and a ``ledgerdrill-backup.json`` saying when it became
usable; ``<state>/object-storage/wal/`` is the continuous WAL archive the members write
(``basic_archive``). A restore is what a managed service's PITR does: a *new* server
from the newest base backup older than the target, replaying archived WAL up to the
target time, then promoted on a timeline of its own. The restored server does not
archive (it would share the folder with the cluster it came from); it is a separate
server the runbook can point the application at.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.postgres import conf
from ledgerdrill.platforms.sandbox.postgres.server import PgServer
from ledgerdrill.platforms.sandbox.procs import wait_until

META = "ledgerdrill-backup.json"


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    label: str
    usable_from: datetime  # server time after the backup ended: a target must be later
    timeline: int


def take_base_backup(source: PgServer, base_dir: Path) -> BaseBackup:
    """``pg_basebackup`` from ``source`` into a new folder of ``base_dir``."""
    started = _server_now(source)
    label = "base-" + started.strftime("%Y%m%dT%H%M%S%fZ")
    target = base_dir / label
    source.run_tool(  # as the server's user, with its passfile
        "pg_basebackup",
        "-D",
        str(target),
        "-d",
        source.replication_conninfo("ledgerdrill-backup"),
        "-X",
        "stream",
        "--checkpoint=fast",
        "--no-sync",
        f"--label={label}",
    )
    backup = BaseBackup(target, label, _server_now(source), source.timeline_id())
    (target / META).write_text(
        json.dumps(
            {
                "label": label,
                "usable_from": backup.usable_from.isoformat(),
                "timeline": backup.timeline,
            }
        )
    )
    return backup


def list_base_backups(base_dir: Path) -> list[BaseBackup]:
    """Every complete base backup, oldest first."""
    found: list[BaseBackup] = []
    for meta in sorted(base_dir.glob(f"*/{META}")):
        try:
            data = json.loads(meta.read_text())
            found.append(
                BaseBackup(
                    meta.parent,
                    str(data["label"]),
                    datetime.fromisoformat(data["usable_from"]),
                    int(data["timeline"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda b: b.usable_from)


def _server_now(server: PgServer) -> datetime:
    value = server.query("SELECT now()")[0][0]
    assert isinstance(value, datetime)
    return value


def make_target_reachable(primary: PgServer, target_time: datetime, timeout_s: float) -> None:
    """Recovery stops at the first commit *after* the target; without one in the
    archive it ends with "recovery ended before configured recovery target was
    reached". So: a small committed transaction now (a commit record later than the
    target), a WAL switch, and a wait until that segment is archived."""
    if target_time >= _server_now(primary):
        raise PlatformError(f"restore target {target_time.isoformat()} is not in the past")
    with primary.connect() as conn:
        conn.execute("SELECT pg_current_xact_id()")  # assigns an xid: a commit record
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    segment = str(row[0])

    def archived() -> bool:
        return (primary.archive_dir / segment).exists()

    wait_until(archived, timeout_s=timeout_s, what=f"WAL segment {segment} to be archived")


def restore(
    backup: BaseBackup,
    server: PgServer,
    target_time: datetime,
    timeout_s: float = 120.0,
) -> float:
    """Restore ``backup`` into ``server``'s (new) data folder, replay the archive to
    ``target_time`` and promote. Returns the seconds the server took to get there."""
    if server.data_dir.exists():
        raise PlatformError(f"{server.data_dir} already exists; refusing to overwrite it")
    server.data_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(backup.path, server.data_dir, symlinks=True)
    (server.data_dir / META).unlink(missing_ok=True)
    (server.data_dir / "standby.signal").unlink(missing_ok=True)
    (server.data_dir / "recovery.signal").touch()
    server.run_as.give(server.data_dir.parent)
    server.data_dir.chmod(0o700)
    conf.edit_auto_conf(
        server.data_dir,
        {
            "synchronous_standby_names": None,  # the source's: nobody here to wait for
            "primary_conninfo": None,
            "primary_slot_name": None,
            "archive_mode": "off",
            "recovery_target_time": target_time.astimezone(UTC).isoformat(sep=" "),
            "recovery_target_action": "promote",
            "recovery_target_timeline": "latest",
        },
    )
    started = datetime.now(UTC)
    server.start(timeout_s=timeout_s)
    wait_until(server.is_primary, timeout_s=timeout_s, what=f"{server.name} to finish recovery")
    return (datetime.now(UTC) - started).total_seconds()
