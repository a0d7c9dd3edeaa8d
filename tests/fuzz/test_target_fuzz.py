"""Fuzzing target files: every input ends in a valid Target or one clear ConfigError.

Inputs are random YAML documents, the shipped target with random fields replaced by
random values (wrong types, huge numbers, unicode, unknown keys), and random bytes.
The count of cases tried is printed (run with -s to see it)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from fuzz_strategies import mutated, paths
from fuzz_strategies import values as fuzz_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerdrill.errors import ConfigError
from ledgerdrill.targets import load_target

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "targets" / "sandbox.yaml").read_text())
# the business calendar's fields are mutated too (time zones, dates, day counts)
BASE["safety"]["calendar"] = {
    "timezone": "Europe/Berlin",
    "weekend": ["sat", "sun"],
    "holidays": ["2026-12-25"],
    "blackouts": [
        {"name": "month-end-close", "month_end": {"last_business_days": 3, "first_business_days": 2}},
        {"name": "audit", "from": "2026-12-20", "to": "2027-01-10", "reason": "year-end"},
    ],
}
OUTCOMES: Counter[str] = Counter()

values = fuzz_values(["5m", "0s", "-1s", "1h30m", "∞", "５m", "1e309s", "", "finance-core", "*"])
BASE_PATHS = paths(BASE)


def check(tmp: Path, text: str) -> None:
    path = tmp / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_target(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "Traceback" not in message
        OUTCOMES["clear error"] += 1
    else:
        OUTCOMES["valid"] += 1


fuzz_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz_settings
@given(doc=values)
def test_random_documents(tmp_path: Path, doc: Any) -> None:
    check(tmp_path, yaml.safe_dump(doc, allow_unicode=True))


@fuzz_settings
@given(where=st.sampled_from(BASE_PATHS), value=values, extra=st.text(min_size=1, max_size=10))
def test_mutated_sandbox_target(
    tmp_path: Path, where: tuple[Any, ...], value: Any, extra: str
) -> None:
    check(tmp_path, yaml.safe_dump(mutated(BASE, where, value, extra), allow_unicode=True))


@fuzz_settings
@given(raw=st.binary(max_size=200))
def test_random_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(raw)
    try:
        load_target(path)
    except ConfigError:
        OUTCOMES["clear error"] += 1
    else:
        OUTCOMES["valid"] += 1


def test_zz_report_counts() -> None:
    """Runs last in this file: prints how many cases ended which way."""
    print(f"\ntarget fuzzing: {sum(OUTCOMES.values())} cases: {dict(OUTCOMES)}")
    assert OUTCOMES["clear error"] > 0
