"""Durations as people write them in target files: ``90s``, ``5m``, ``1h30m``, ``250ms``."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
HINT = "a duration such as 0s, 250ms, 90s, 5m or 1h30m"
# no drill objective or timeout is longer than this; a bigger number is a typo
MAX_SECONDS = 30 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError naming what is allowed otherwise."""
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError(f"empty duration; use {HINT}")
    position, total = 0, 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match["value"]) * _UNITS[match["unit"]]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(f"{text!r} is not {HINT}")
    return total


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    rest = seconds
    for unit, size in (("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def _coerce(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {HINT}, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not {HINT}")
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
    else:
        raise ValueError(f"expected {HINT}, got {type(value).__name__}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{value!r} is longer than the 30-day maximum for a duration")
    return seconds


# A duration field: accepts "5m" or a number of seconds, holds seconds, writes "5m".
Duration = Annotated[
    float, BeforeValidator(_coerce), PlainSerializer(format_duration, return_type=str)
]
