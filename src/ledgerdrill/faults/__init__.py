"""Fault types. Importing this package registers every kind, so ``cleanup`` can
rebuild any fault from its journal record."""

from ledgerdrill.faults.base import (
    Evidence,
    Fault,
    TargetRef,
    fault_from_record,
    register_fault,
    registered_faults,
)
from ledgerdrill.faults.cache import CacheLoss
from ledgerdrill.faults.certificate import CertificateExpiry, CertificateRemoval
from ledgerdrill.faults.database import DatabaseCorruption, DatabaseFailover
from ledgerdrill.faults.node import NodeCrash, NodeDrain, NodeFreeze
from ledgerdrill.faults.region import RegionOutage
from ledgerdrill.faults.release import BadRelease
from ledgerdrill.faults.scripted import ScriptedOutage
from ledgerdrill.faults.zone import ZoneOutage

__all__ = [
    "BadRelease",
    "CacheLoss",
    "CertificateExpiry",
    "CertificateRemoval",
    "DatabaseCorruption",
    "DatabaseFailover",
    "Evidence",
    "Fault",
    "NodeCrash",
    "NodeDrain",
    "NodeFreeze",
    "RegionOutage",
    "ScriptedOutage",
    "TargetRef",
    "ZoneOutage",
    "fault_from_record",
    "register_fault",
    "registered_faults",
]
