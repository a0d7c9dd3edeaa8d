"""The sandbox's real PostgreSQL HA cluster.

``PgCluster`` builds and runs the servers (primary, synchronous standby, DR replica,
WAL archive and base backups), ``HaController`` decides when to fail over, and
``is_unreplicated_commit_notice`` lets a client spot a commit that was acknowledged
without reaching the synchronous standby.
"""

from ledgerdrill.platforms.sandbox.postgres.backup import BaseBackup
from ledgerdrill.platforms.sandbox.postgres.binaries import PgBinaries, locate_binaries
from ledgerdrill.platforms.sandbox.postgres.cluster import PgCluster
from ledgerdrill.platforms.sandbox.postgres.ha import EventSink, HaController
from ledgerdrill.platforms.sandbox.postgres.server import (
    PgServer,
    ReplicationRow,
    is_unreplicated_commit_notice,
)

__all__ = [
    "BaseBackup",
    "EventSink",
    "HaController",
    "PgBinaries",
    "PgCluster",
    "PgServer",
    "ReplicationRow",
    "is_unreplicated_commit_notice",
    "locate_binaries",
]
