"""The replica's settings, read from one private JSON file.

The DSN and the Redis URL carry passwords, so they travel in a private file (never
argv, never an environment listing) and are ``SecretStr`` so a repr or a log line cannot
leak them by accident. Private: no one but the ERP's own user -- and, where a platform
hands the file over through a group (a Kubernetes Secret volume with ``fsGroup`` is
root-owned, mode 0440, group fsGroup), its own group -- can read it.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

Defect = Literal["posting-fails", "slow-posting"]


class ErpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn: SecretStr  # libpq string (multi-host, target_session_attrs=read-write)
    redis_url: SecretStr | None = None  # redis://:pw@host:port/db; None = no sessions
    database: str = "ledgerdrill"  # the Odoo database name clients send
    release: str = "2026.11.0"
    defect: Defect | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "dsn": self.dsn.get_secret_value(),
                "redis_url": self.redis_url.get_secret_value() if self.redis_url else None,
                "database": self.database,
                "release": self.release,
                "defect": self.defect,
            },
            indent=2,
        )

    def write(self, path: Path) -> None:
        """Atomically replace ``path`` (mode 0600): a replica restarting mid-write reads
        either the old or the new file, never half of one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600 already, so the secret is never world-readable
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(self.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> ErpConfig:
        path = Path(path)
        info = path.stat()
        problem = exposure(stat.S_IMODE(info.st_mode), info.st_gid, {os.getgid(), *os.getgroups()})
        if problem:
            # a secret readable by others is a setup bug: refuse rather than run with it
            raise PermissionError(f"{path}: {problem}")
        return cls.model_validate_json(path.read_text())


def exposure(mode: int, file_gid: int, own_groups: set[int]) -> str:
    """Why a config file with ``mode`` and group ``file_gid`` is not private to a process
    in ``own_groups`` ("" when it is): nothing for others, no group write, and group
    read only for a group the process itself belongs to."""
    if mode & 0o007 or mode & 0o030:
        return (
            f"mode {mode:04o} lets others (or its group) change or read it; allowed: "
            "0600 or 0400, or 0640/0440 with a group of the ERP's own"
        )
    if mode & 0o040 and file_gid not in own_groups:
        return (
            f"mode {mode:04o} lets group {file_gid} read it, a group the ERP is not in; "
            "allowed: 0600 or 0400, or group read for a group of the ERP's own (fsGroup)"
        )
    return ""
