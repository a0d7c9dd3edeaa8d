"""Runbook steps. Importing this package registers every kind, so ``cleanup`` can
rebuild any step from its journal record."""

from ledgerdrill.runbook.base import (
    RunbookAction,
    register_runbook,
    registered_runbooks,
    runbook_from_record,
)
from ledgerdrill.runbook.steps import (
    CertificateRotation,
    PointInTimeRestore,
    RegionFailover,
    ReleaseRollback,
)

__all__ = [
    "CertificateRotation",
    "PointInTimeRestore",
    "RegionFailover",
    "ReleaseRollback",
    "RunbookAction",
    "register_runbook",
    "registered_runbooks",
    "runbook_from_record",
]
