"""PostgreSQL configuration files of the sandbox's servers.

Three layers, as on a managed service:

* ``ledgerdrill.conf`` (included at the end of ``postgresql.conf``): what every member
  shares -- replication, archiving to the object-storage folder, small memory. It is
  copied with every base backup, so a standby or a restored server inherits it.
* ``postgresql.auto.conf``: what changes with a member's role (``primary_conninfo``,
  ``synchronous_standby_names`` ...). On a running server it is changed with
  ``ALTER SYSTEM``; on a stopped one (after ``pg_basebackup`` / ``pg_rewind``, which
  copy the source's file) it is edited here.
* the command line: what is private to one process (port, listen address, no unix
  socket), so a copied data folder can never start on its source's port.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

INCLUDE_NAME = "ledgerdrill.conf"
AUTO_CONF = "postgresql.auto.conf"


def quote(value: str) -> str:
    """A configuration-file string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def shell_quote(path: Path) -> str:
    """A path inside an ``archive_command``/``restore_command`` (run by ``sh -c``)."""
    return "'" + str(path).replace("'", "'\\''") + "'"


def shared_settings(archive_dir: Path) -> dict[str, str]:
    """Settings every member shares. Why each one matters:

    * ``wal_log_hints``/checksums: ``pg_rewind`` needs one of them to rejoin an old primary.
    * ``wal_retrieve_retry_interval=100ms``: the default 5 s is added to every promotion
      and every reconnect of a standby to a new primary.
    * ``wal_receiver_status_interval=1s`` + ``wal_sender_timeout=5s``: a frozen standby
      shows up (stale ``reply_time``, then a dropped walsender) within seconds, not a minute.
    * ``archive_library=basic_archive``: an atomic copy into the archive folder (temporary
      file, fsync, rename) that also succeeds when an identical file is already there --
      a plain ``test ! -f && cp`` would block archiving forever after a re-archive of the
      same segment by a promoted standby.
    * ``restore_command``: standbys and restored servers read WAL and timeline history
      from the archive; a promotion then never picks a timeline id already in use there.
    """
    restore = f"test -f {shell_quote(archive_dir)}/%f && cp {shell_quote(archive_dir)}/%f %p"
    return {
        "shared_buffers": "32MB",
        "max_connections": "60",
        "max_worker_processes": "4",
        "max_parallel_workers": "2",
        "wal_level": "replica",
        "wal_log_hints": "on",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "wal_keep_size": "128MB",
        "max_wal_size": "256MB",
        "min_wal_size": "32MB",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "wal_retrieve_retry_interval": "100ms",
        "wal_receiver_status_interval": "1s",
        "wal_receiver_timeout": "5s",
        "wal_sender_timeout": "5s",
        "synchronous_commit": "on",
        "archive_mode": "on",
        "archive_library": quote("basic_archive"),
        "basic_archive.archive_directory": quote(str(archive_dir)),
        "restore_command": quote(restore),
        "recovery_target_timeline": quote("latest"),
        "password_encryption": quote("scram-sha-256"),
        "lc_messages": quote("C"),
        "log_line_prefix": quote("%m [%p] %q%a "),
        "log_connections": "off",
    }


def render(settings: Mapping[str, str]) -> str:
    lines = ["# written by ledgerdrill: the settings every member of the sandbox shares"]
    lines += [f"{name} = {value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


HBA = """\
# written by ledgerdrill: TCP on 127.0.0.1 only, passwords (SCRAM) for everyone
host    all             all             127.0.0.1/32    scram-sha-256
host    replication     all             127.0.0.1/32    scram-sha-256
"""


def write_server_files(data_dir: Path, archive_dir: Path) -> None:
    """Install the shared settings and pg_hba.conf into a fresh ``initdb`` folder."""
    (data_dir / INCLUDE_NAME).write_text(render(shared_settings(archive_dir)))
    main = data_dir / "postgresql.conf"
    text = main.read_text()
    if f"include '{INCLUDE_NAME}'" not in text:
        main.write_text(text + f"\ninclude '{INCLUDE_NAME}'\n")
    (data_dir / "pg_hba.conf").write_text(HBA)


def _parse_line(line: str) -> tuple[str, str] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or "=" not in stripped:
        return None
    name, _, value = stripped.partition("=")
    return name.strip(), value.strip()


def read_auto_conf(data_dir: Path) -> dict[str, str]:
    """Raw (still quoted) values of ``postgresql.auto.conf``; the last one wins, as in
    PostgreSQL."""
    path = data_dir / AUTO_CONF
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parsed = _parse_line(line)
        if parsed is not None:
            found[parsed[0]] = parsed[1]
    return found


def edit_auto_conf(data_dir: Path, changes: Mapping[str, str | None]) -> None:
    """Set (a plain string, quoted here) or remove (``None``) settings of a *stopped*
    server, keeping the file's owner and mode (the server runs as another user)."""
    path = data_dir / AUTO_CONF
    current = read_auto_conf(data_dir)
    for name, value in changes.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = quote(value)
    text = "# Do not edit this file manually!\n# It will be overwritten by ALTER SYSTEM.\n"
    text += "".join(f"{name} = {value}\n" for name, value in current.items())
    owner = path.stat() if path.exists() else data_dir.stat()
    tmp = path.with_name(AUTO_CONF + ".ledgerdrill-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if owner.st_uid != os.getuid():
        os.chown(tmp, owner.st_uid, owner.st_gid)
    tmp.replace(path)
