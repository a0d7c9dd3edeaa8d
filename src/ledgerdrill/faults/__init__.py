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
from ledgerdrill.faults.node import NodeCrash, NodeDrain, NodeFreeze

__all__ = [
    "Evidence",
    "Fault",
    "NodeCrash",
    "NodeDrain",
    "NodeFreeze",
    "TargetRef",
    "fault_from_record",
    "register_fault",
    "registered_faults",
]
