"""Which stage of a load profile runs now. Standard library only: the locustfile's shape
(in the Locust master, next to gevent) imports this module, and the harness tests it.

A profile's stages name the drill phase they belong to and their own length (``for_s``).
Two ways to walk them:

- **Following a drill** (:func:`stage_in_phase`): the harness says which phase the drill
  is in and since when. The phase's stages run one after the other from the moment the
  phase began; its last stage holds until the phase changes (the drill, not the profile,
  decides how long a fault lasts). A phase without stages keeps the stage before it. The
  last stage of the profile holds until the harness stops the load.
- **On its own** (:func:`stage_on_its_own`, no drill: a load run by hand): the stages run
  back to back from the start and the load ends after the last one.

The first stage is always in the baseline phase (the profile validator sees to it): a
drill compares every later phase with the load before the fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PHASES = ("baseline", "fault", "recovery", "post-recovery")


def stage_in_phase(stages: Sequence[Mapping[str, Any]], phase: str, elapsed_s: float) -> int:
    """Index of the stage that runs ``elapsed_s`` seconds after ``phase`` began."""
    if phase not in PHASES:
        raise ValueError(f"phase {phase!r} is not one of {', '.join(PHASES)}")
    if not stages:
        raise ValueError("a profile has at least one stage")
    rank = PHASES.index(phase)
    in_phase = [i for i, stage in enumerate(stages) if stage["phase"] == phase]
    if not in_phase:
        # the stage before: the last one of an earlier phase (the first stage is baseline)
        earlier = [i for i, stage in enumerate(stages) if PHASES.index(stage["phase"]) < rank]
        return earlier[-1] if earlier else 0
    end_s = 0.0
    for index in in_phase:
        end_s += float(stage_length(stages[index]))
        if elapsed_s < end_s:
            return index
    return in_phase[-1]


def stage_on_its_own(stages: Sequence[Mapping[str, Any]], run_time_s: float) -> int | None:
    """Index of the stage that runs ``run_time_s`` after the start; None after the last."""
    end_s = 0.0
    for index, stage in enumerate(stages):
        end_s += float(stage_length(stage))
        if run_time_s < end_s:
            return index
    return None


def phase_stages_s(stages: Sequence[Mapping[str, Any]], phase: str) -> float:
    """How long ``phase``'s own stages last, back to back (0 when it has none)."""
    return sum(float(stage_length(s)) for s in stages if s["phase"] == phase)


def total_s(stages: Sequence[Mapping[str, Any]]) -> float:
    return sum(float(stage_length(s)) for s in stages)


def stage_length(stage: Mapping[str, Any]) -> float:
    return float(stage["for_s"])
