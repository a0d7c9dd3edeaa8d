"""The sandbox database's passwords: generated once, kept in 0600 files, never logged.

Two files, for two readers:

* ``secrets.json`` (the harness's user): every password, read by the harness to build
  DSNs for the ERP and for its own administration.
* ``pgpass`` (the user the servers run as): the superuser's and the replication role's
  passwords, named by ``passfile=`` in ``primary_conninfo`` and used by
  ``pg_basebackup``/``pg_rewind``. Passwords therefore never appear on a command line
  (``ps`` shows those) nor in ``postgresql.auto.conf`` (which every base backup copies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.procs import RunAs

SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
APP_USER = "erp"
APP_DATABASE = "ledgerdrill"


@dataclass(frozen=True)
class PgCredentials:
    """Passwords by role; ``repr`` never shows them."""

    superuser_password: str = field(repr=False)
    replication_password: str = field(repr=False)
    app_password: str = field(repr=False)

    def password(self, user: str) -> str:
        by_user = {
            SUPERUSER: self.superuser_password,
            REPLICATION_USER: self.replication_password,
            APP_USER: self.app_password,
        }
        try:
            return by_user[user]
        except KeyError:
            raise PlatformError(f"the sandbox database has no role {user!r}") from None

    @staticmethod
    def generate() -> PgCredentials:
        return PgCredentials(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        )


def _write_private(path: Path, text: str, run_as: RunAs | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if run_as is not None and run_as.is_other_user:
        os.chown(tmp, run_as.uid, run_as.gid)
    tmp.replace(path)


def load_or_create(path: Path) -> PgCredentials:
    """The passwords in ``path``, generating and saving them (0600) the first time."""
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return PgCredentials(
                data["superuser_password"], data["replication_password"], data["app_password"]
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PlatformError(f"{path} is not a ledgerdrill secrets file") from exc
    creds = PgCredentials.generate()
    _write_private(
        path,
        json.dumps(
            {
                "superuser_password": creds.superuser_password,
                "replication_password": creds.replication_password,
                "app_password": creds.app_password,
            }
        ),
    )
    return creds


def write_passfile(path: Path, creds: PgCredentials, run_as: RunAs) -> None:
    """A libpq password file for the servers' own connections (owned by ``run_as``)."""
    lines = [
        f"127.0.0.1:*:*:{SUPERUSER}:{creds.superuser_password}",
        f"127.0.0.1:*:*:{REPLICATION_USER}:{creds.replication_password}",
    ]
    _write_private(path, "\n".join(lines) + "\n", run_as)


def write_initdb_password(path: Path, creds: PgCredentials, run_as: RunAs) -> None:
    """The superuser password for ``initdb --pwfile`` (deleted right after)."""
    _write_private(path, creds.superuser_password + "\n", run_as)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5803 form).

    Roles are created with ``PASSWORD '<verifier>'``: the plain password then never
    reaches the server, so a failed statement echoed into its log reveals nothing."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
