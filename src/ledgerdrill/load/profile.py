"""Load profiles: YAML files of stages anchored to drill phases, and a task mix.

A profile is validated here, in the harness, and handed to the Locust subprocess as a
plain JSON *plan* (see :meth:`LoadProfile.plan`), so the locustfile needs nothing but
Locust (and, in the master's shape, the stdlib-only :mod:`ledgerdrill.load.schedule`).
Example::

    name: month-end-close
    think_time: 500ms
    mix: {accountant: 4, treasury: 2, controller: 1, bank_feed: 2}
    stages:
      - {phase: baseline, for: 5s, users: 6, spawn_rate: 2}
      - {phase: fault, for: 20s, users: 12, spawn_rate: 2, mix: {accountant: 6, controller: 3}}
      - {phase: post-recovery, for: 15s, users: 12, spawn_rate: 12, mix: {login: 1}}

Each stage names the drill phase it runs in (``baseline``, ``fault``, ``recovery``,
``post-recovery``) and its own length (``for``). A phase's stages run back to back from
the moment the drill enters it; its last stage holds until the phase changes; a phase
without stages keeps the load of the stage before it (see :mod:`ledgerdrill.load.schedule`).
A stage starts from the previous stage's users (0 for the first) and must be able to
reach its users at its ``spawn_rate`` within its ``for``: Locust's shape runner blocks
during a ramp, so an impossible ramp would silently swallow the next stage.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledgerdrill.config_errors import load_yaml_mapping, validate
from ledgerdrill.durations import Duration, format_duration
from ledgerdrill.errors import ConfigError
from ledgerdrill.load.model import Phase
from ledgerdrill.load.schedule import PHASES, total_s

ROLES = ("accountant", "treasury", "controller", "bank_feed", "login")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MAX_USERS = 10_000
MAX_SPAWN_RATE = 1_000.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Mix(_Strict):
    """Relative weights of the user flows; each iteration of a user draws one flow.

    ``accountant`` posts customer invoices and vendor bills, ``treasury`` registers
    payments (bank journal) and looks up open receivables, ``controller`` runs the trial
    balance and aged receivables, ``bank_feed`` posts statement lines with idempotency
    references, ``login`` drops the session and authenticates again (a reconnect storm).
    """

    accountant: float = Field(default=0.0, ge=0, le=1000)
    treasury: float = Field(default=0.0, ge=0, le=1000)
    controller: float = Field(default=0.0, ge=0, le=1000)
    bank_feed: float = Field(default=0.0, ge=0, le=1000)
    login: float = Field(default=0.0, ge=0, le=1000)

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if sum(self.weights().values()) <= 0:
            raise ValueError(f"a mix needs at least one positive weight among {', '.join(ROLES)}")
        return self

    def weights(self) -> dict[str, float]:
        return {role: float(getattr(self, role)) for role in ROLES}


# profiles written before stages were anchored to phases: say how to rewrite them
OLD_STAGE_FIELDS = ("until", "until_s")


class Stage(_Strict):
    phase: Phase = Field(description="the drill phase this stage runs in")
    for_s: Duration = Field(alias="for", description="the stage's own length")
    users: int = Field(ge=0, le=MAX_USERS)
    spawn_rate: float = Field(gt=0, le=MAX_SPAWN_RATE, description="users started per second")
    mix: Mix | None = Field(default=None, description="the profile's mix when not given")
    replay_share: float = Field(
        default=0.0, ge=0, le=1, description="share of bank-feed posts that re-send an old ref"
    )

    @model_validator(mode="before")
    @classmethod
    def _not_old_style(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(field in data for field in OLD_STAGE_FIELDS):
            raise ValueError(
                "'until' (time since the load started) is no longer allowed: a stage names "
                "the drill phase it runs in and its own length, e.g. {phase: baseline, "
                "for: 10s, users: 4, spawn_rate: 2}; allowed phases: " + ", ".join(PHASES)
            )
        return data

    @field_validator("for_s")
    @classmethod
    def _some_length(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a stage lasts more than 0s")
        return value


class LoadProfile(_Strict):
    name: str
    description: str = ""
    think_time: Duration = Field(default=0.5, description="pause of a user between two flows")
    mix: Mix
    stages: list[Stage] = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(
                f"{value!r} is not a profile name (lower-case letters, digits, '.', '_' or '-')"
            )
        return value

    @model_validator(mode="after")
    def _stages_possible(self) -> Self:
        if self.think_time > 60:
            raise ValueError(f"think_time: {format_duration(self.think_time)} is over 1m")
        if self.stages[0].phase != "baseline":
            raise ValueError(
                f"stages.0.phase: {self.stages[0].phase} is not allowed for the first stage "
                "(allowed: baseline): a drill compares every later phase with the load "
                "before the fault"
            )
        users, rank = 0, 0
        for i, stage in enumerate(self.stages):
            if PHASES.index(stage.phase) < rank:
                raise ValueError(
                    f"stages.{i}.phase: {stage.phase} after {PHASES[rank]}; stages are "
                    f"listed in drill order ({', '.join(PHASES)})"
                )
            rank = PHASES.index(stage.phase)
            ramp_s = abs(stage.users - users) / stage.spawn_rate
            if ramp_s > stage.for_s + 1e-9:
                need_rate = math.ceil(abs(stage.users - users) / stage.for_s * 100) / 100
                raise ValueError(
                    f"stages.{i}.spawn_rate: going from {users} to {stage.users} users at "
                    f"{stage.spawn_rate:g}/s takes {ramp_s:g}s but the stage lasts "
                    f"{stage.for_s:g}s; allowed: a spawn_rate of at least {need_rate:g}, "
                    f"fewer users or a longer for (at least {format_duration(ramp_s)})"
                )
            users = stage.users
        return self

    @property
    def duration_s(self) -> float:
        """How long the stages last back to back (the load run on its own)."""
        return sum(stage.for_s for stage in self.stages)

    def phase_s(self, phase: Phase) -> float:
        """How long ``phase``'s own stages last (0: the phase has none)."""
        return sum(stage.for_s for stage in self.stages if stage.phase == phase)

    @property
    def peak_users(self) -> int:
        return max(stage.users for stage in self.stages)

    def scaled(self, factor: float) -> LoadProfile:
        """The same profile with users and spawn rates multiplied by ``factor`` (durations
        unchanged, so every ramp stays possible). A stage with users keeps at least one."""
        if not math.isfinite(factor) or factor <= 0:
            raise ConfigError(f"load scale: {factor!r} is not allowed (a number above 0)")
        stages = []
        previous = 0
        for stage in self.stages:
            users = 0 if stage.users == 0 else max(1, round(stage.users * factor))
            if users > MAX_USERS:
                raise ConfigError(
                    f"load scale: {factor:g} makes {users} users in profile {self.name!r}; "
                    f"allowed: at most {MAX_USERS}"
                )
            # rounding users up (at least one) can need a faster ramp than rate x factor
            needed = abs(users - previous) / stage.for_s
            rate = min(MAX_SPAWN_RATE, max(stage.spawn_rate * factor, needed))
            stages.append(stage.model_copy(update={"users": users, "spawn_rate": rate}))
            previous = users
        # rounding can leave a ramp a hair too slow: re-validate through the model
        data = self.model_dump(by_alias=True)
        data["stages"] = [s.model_dump(by_alias=True) for s in stages]
        return validate(LoadProfile, data, f"profile {self.name!r} scaled by {factor:g}")  # type: ignore[no-any-return]

    def plan(
        self, *, max_duration_s: float | None = None, phase_file: Path | None = None
    ) -> dict[str, Any]:
        """What the locustfile's LoadTestShape reads (plain JSON, no ledgerdrill import).

        With ``phase_file`` the shape follows the drill's phases as the harness writes them
        there; without, the stages run back to back and end (``end_s``)."""
        stages = [
            {
                "phase": stage.phase,
                "for_s": stage.for_s,
                "users": stage.users,
                "spawn_rate": stage.spawn_rate,
                "mix": (stage.mix or self.mix).weights(),
                "replay_share": stage.replay_share,
            }
            for stage in self.stages
        ]
        # following a drill, the harness ends the load (bounded by max_duration_s)
        end = total_s(stages) if phase_file is None else None
        if max_duration_s is not None:
            end = max_duration_s if end is None else min(end, max_duration_s)
        return {
            "name": self.name,
            "think_time_s": self.think_time,
            "stages": stages,
            "end_s": end,
            "phase_file": str(phase_file) if phase_file is not None else None,
        }


def load_profile(path: Path | str, *, scale: float = 1.0) -> LoadProfile:
    """Read and check a profile file; ConfigError (file, field, what is allowed) otherwise."""
    path = Path(path)
    data = load_yaml_mapping(path, "load profile")
    profile: LoadProfile = validate(LoadProfile, data, path)
    return profile if scale == 1.0 else profile.scaled(scale)


def find_profile(name_or_path: str, search: list[Path] | None = None) -> Path:
    """A profile file from a name (``month-end-close``) or a path; ConfigError if absent."""
    given = Path(name_or_path)
    if given.suffix in {".yaml", ".yml"} or given.is_file():
        if not given.is_file():
            raise ConfigError(f"{given}: load profile not found")
        return given
    folders = search if search is not None else [Path("loadprofiles")]
    for folder in folders:
        for suffix in (".yaml", ".yml"):
            candidate = folder / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.y*ml")})
    raise ConfigError(
        f"load profile {name_or_path!r} not found in {', '.join(map(str, folders))} "
        f"(allowed: {', '.join(known) or 'none found'})"
    )
