"""Fault types. Importing this package imports every module in it, so every fault kind
is registered and ``cleanup`` can rebuild any fault from its journal record -- a new
fault module needs no line here (CONTRIBUTING.md, "Add a fault")."""

import importlib
import pkgutil

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
from ledgerdrill.faults.network import NetworkLatency, NetworkLoss, NetworkPartition
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
    "NetworkLatency",
    "NetworkLoss",
    "NetworkPartition",
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

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
