"""Measurement: recovery (RTO), loss (RPO), finance invariants and verdicts."""

from ledgerdrill.measure.invariants import InvariantReport, PostedEntry, check_invariants
from ledgerdrill.measure.loss import Loss, Write, WriteOutcome, measure_loss
from ledgerdrill.measure.recovery import Recovery, StabilityWindow, measure_recovery
from ledgerdrill.measure.verdict import (
    Check,
    Judgement,
    LoadFigures,
    Measurements,
    Objective,
    Verdict,
    fmt_s,
    judge,
)

__all__ = [
    "Check",
    "InvariantReport",
    "Judgement",
    "LoadFigures",
    "Loss",
    "Measurements",
    "Objective",
    "PostedEntry",
    "Recovery",
    "StabilityWindow",
    "Verdict",
    "Write",
    "WriteOutcome",
    "check_invariants",
    "fmt_s",
    "judge",
    "measure_loss",
    "measure_recovery",
]
