"""The backup-freshness probe's newest-file rule (``BackupFreshnessProbe._newest``)."""

from __future__ import annotations

import os
from pathlib import Path

from ledgerdrill.probes.redis_backup import BackupFreshnessProbe


def test_the_newest_of_its_kind_wins_and_hidden_entries_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "base-1").mkdir()
    (tmp_path / "base-2").mkdir()
    (tmp_path / "wal-1").write_text("x")
    (tmp_path / ".partial").mkdir()
    os.utime(tmp_path / "base-1", (1000, 1000))
    os.utime(tmp_path / "base-2", (2000, 2000))
    os.utime(tmp_path / "wal-1", (3000, 3000))
    os.utime(tmp_path / ".partial", (4000, 4000))  # in progress: not a backup yet
    assert BackupFreshnessProbe._newest(tmp_path, dirs=True) == 2000
    assert BackupFreshnessProbe._newest(tmp_path, dirs=False) == 3000


def test_nothing_there_or_no_folder_is_none(tmp_path: Path) -> None:
    assert BackupFreshnessProbe._newest(tmp_path, dirs=False) is None
    assert BackupFreshnessProbe._newest(tmp_path / "missing", dirs=True) is None


def test_a_symlink_counts_as_what_it_points_to(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.utime(tmp_path / "real", (5000, 5000))
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert BackupFreshnessProbe._newest(tmp_path, dirs=True) == 5000
    assert BackupFreshnessProbe._newest(tmp_path, dirs=False) is None
