"""Shared pieces of the fuzz tests: random YAML values and every path into a document."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st


def values(extra_strings: list[str]) -> st.SearchStrategy[Any]:
    """Nested YAML values: wrong types, huge numbers, NaN, unicode, and ``extra_strings``."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(extra_strings),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    )


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += paths(value, (*prefix, index))
    return out


def mutated(base: Any, where: tuple[Any, ...], value: Any, extra: str) -> Any:
    """``base`` with the field at ``where`` replaced by ``value`` and an unknown key beside."""
    doc = copy.deepcopy(base)
    node = doc
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    if isinstance(node, dict):
        node[extra] = value
    return doc
