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


def reference_report(entries: list[PostedEntry], full_sequence: bool) -> dict[str, object]:
    """The definitions, written out the slow way (no regex, no Counter): the oracle."""
    unbalanced = tuple(e.name for e in entries if e.debit != e.credit)
    refs = [e.ref for e in entries if e.ref]
    duplicate_refs = tuple(sorted({r for r in refs if refs.count(r) > 1}))
    names = [e.name for e in entries]
    duplicate_names = tuple(sorted({n for n in names if names.count(n) > 1}))
    sequences: dict[str, set[int]] = {}
    widths: dict[str, int] = {}
    for name in names:
        digits = len(name) - len(name.rstrip("0123456789"))
        if digits == 0:
            continue
        prefix, number = name[: len(name) - digits], name[len(name) - digits :]
        sequences.setdefault(prefix, set()).add(int(number))
        widths[prefix] = len(number)
    gaps = []
    for prefix in sorted(sequences):
        present = sequences[prefix]
        low = 1 if full_sequence else min(present)
        missing = [n for n in range(low, max(present) + 1) if n not in present]
        if missing:
            shown = ", ".join(f"{n:0{widths[prefix]}d}" for n in missing[:5])
            more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
            gaps.append(f"{prefix}: missing {shown}{more}")
    return {
        "entries": len(entries), "unbalanced": unbalanced, "duplicate_refs": duplicate_refs,
        "sequence_gaps": tuple(gaps), "duplicate_names": duplicate_names,
    }  # fmt: skip


_names = st.builds(
    lambda prefix, number: f"{prefix}{number:05d}",
    st.sampled_from(["INV/2026/", "BILL/2026/", "MISC/2025/", "X"]),
    st.integers(1, 40),
)
_entries = st.lists(
    st.builds(
        PostedEntry,
        _names | st.sampled_from(["no-number", "INV/2026/"]),
        st.none() | st.sampled_from(["a", "b", "c", ""]),
        st.sampled_from([Decimal("10"), Decimal("9.99")]),
        st.sampled_from([Decimal("10"), Decimal("9.99")]),
    ),
    max_size=60,
)


@given(_entries, st.booleans())
def test_the_report_equals_the_definitions_written_out(
    entries: list[PostedEntry], full_sequence: bool
) -> None:
    report = check_invariants(entries, full_sequence=full_sequence)
    expected = reference_report(entries, full_sequence)
    assert {name: getattr(report, name) for name in expected} == expected
