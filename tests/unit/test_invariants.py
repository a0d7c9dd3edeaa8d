from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.measure import PostedEntry, check_invariants


def entry(name: str, ref: str | None = None, debit: str = "10", credit: str = "10") -> PostedEntry:
    return PostedEntry(name, ref, Decimal(debit), Decimal(credit))


def test_clean_ledger() -> None:
    report = check_invariants([entry("INV/2026/00001", "a"), entry("INV/2026/00002", "b")])
    assert report.ok
    assert report.problems() == []


def test_each_broken_invariant_is_named() -> None:
    report = check_invariants(
        [
            entry("INV/2026/00001", "a"),
            entry("INV/2026/00003", "a"),
            entry("BILL/2026/00001", "c", "10", "9.99"),
            entry("BILL/2026/00001", "d"),
        ]
    )
    assert not report.ok
    assert report.unbalanced == ("BILL/2026/00001",)
    assert report.duplicate_refs == ("a",)
    assert report.sequence_gaps == ("INV/2026/: missing 00002",)
    assert report.duplicate_names == ("BILL/2026/00001",)
    assert len(report.problems()) == 4


def test_sample_mode_only_reports_inner_gaps() -> None:
    report = check_invariants(
        [entry("INV/2026/00005"), entry("INV/2026/00006")], full_sequence=False
    )
    assert report.ok


@given(st.sets(st.integers(1, 200), min_size=1))
def test_gaps_found_exactly(numbers: set[int]) -> None:
    report = check_invariants([entry(f"MISC/2026/{n:05d}") for n in numbers])
    missing = set(range(1, max(numbers) + 1)) - numbers
    assert bool(report.sequence_gaps) == bool(missing)
