"""Target kinds and the allowlist's fields are one declaration (``target_kinds.py``)."""

from __future__ import annotations

from ledgerdrill.target_kinds import ALLOWLIST_FIELD, TargetKind
from ledgerdrill.targets import AllowList


def test_every_kind_has_an_allowlist_field_and_every_field_a_kind() -> None:
    assert set(ALLOWLIST_FIELD) == set(TargetKind)
    assert set(AllowList.model_fields) == set(ALLOWLIST_FIELD.values())
    assert len(set(ALLOWLIST_FIELD.values())) == len(ALLOWLIST_FIELD)  # no field shared


def test_a_kind_reads_as_the_word_users_write() -> None:
    assert TargetKind.NODE == "node" and str(TargetKind.DATABASE) == "database"
    assert ALLOWLIST_FIELD["zone"] == "zones"  # type: ignore[index]  # a str finds it too
