"""The base of every settings model read from a target file: unknown fields are refused
(a typo must not be silently ignored), values are frozen once read."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
