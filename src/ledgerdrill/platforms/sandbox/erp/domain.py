"""Odoo domains to parameterised SQL.

Supported: leaves ``(field, op, value)`` with ``= != <> < > <= >= in, not in, like,
ilike, not like, not ilike, =like, =ilike``, the prefix operators ``& | !`` and the
implicit AND between top-level terms. Field names come from the model's whitelist
(``spec.py``); values only ever travel as query parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from ledgerdrill.platforms.sandbox.erp.errors import ServerError
from ledgerdrill.platforms.sandbox.erp.spec import ModelSpec

_COMPARE = {"=": "=", "!=": "<>", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_LIKE = {
    "like": ("LIKE", True),
    "ilike": ("ILIKE", True),
    "not like": ("NOT LIKE", True),
    "not ilike": ("NOT ILIKE", True),
    "=like": ("LIKE", False),
    "=ilike": ("ILIKE", False),
}


def invalid(message: str) -> ServerError:
    # Odoo raises ValueError for a malformed domain; clients see builtins.ValueError
    return ServerError(message, "builtins.ValueError")


def _is_leaf(term: object) -> bool:
    return isinstance(term, list | tuple) and len(term) == 3 and isinstance(term[0], str)


def column(model: ModelSpec, name: str) -> sql.Composable:
    spec = model.stored(name)
    if spec is None:
        raise invalid(f"Invalid field {name!r} in domain of model {model.name!r}")
    return sql.Identifier(spec.col(name))


def _leaf(model: ModelSpec, term: Sequence[Any], params: list[Any]) -> sql.Composable:
    name, op, value = term
    if not isinstance(op, str):
        raise invalid(f"Invalid operator {op!r}")
    op = op.lower()
    col = column(model, name)
    spec = model.stored(name)
    if value is False and op in ("=", "!=") and spec is not None and spec.kind == "bool":
        # Odoo: a boolean that is False or not set is False (``odoo/osv/expression.py``
        # reads ``('flag', '=', False)`` as "flag IS NULL or flag = FALSE")
        return sql.SQL("{} IS NOT TRUE" if op == "=" else "{} IS TRUE").format(col)
    if value is False and op in ("=", "!="):
        # Odoo: ('field', '=', False) means "not set"
        return sql.SQL("{} IS NULL" if op == "=" else "{} IS NOT NULL").format(col)
    if isinstance(value, list | tuple) and op in ("=", "!=", "<>") and len(value) == 2:
        value = value[0]  # a many2one value as [id, name]
    if op in _COMPARE:
        params.append(value)
        return sql.SQL("{} {} %s").format(col, sql.SQL(_COMPARE[op]))
    if op in ("in", "not in"):
        values = list(value) if isinstance(value, list | tuple) else [value]
        present = [v for v in values if v is not False and v is not None]
        wants_null = len(present) != len(values)
        params.append(present)
        if op == "in":
            cond = sql.SQL("{} = ANY(%s)").format(col)
            return sql.SQL("({} OR {} IS NULL)").format(cond, col) if wants_null else cond
        cond = sql.SQL("NOT ({} = ANY(%s))").format(col)
        return sql.SQL("({} AND {} IS NOT NULL)").format(cond, col) if wants_null else cond
    if op in _LIKE:
        keyword, wrap = _LIKE[op]
        pattern = f"%{value}%" if wrap else str(value)
        params.append(pattern)
        return sql.SQL("{}::text {} %s").format(col, sql.SQL(keyword))
    raise invalid(f"Invalid operator {op!r} in domain")


def _expr(
    model: ModelSpec, terms: Sequence[Any], pos: int, params: list[Any]
) -> tuple[sql.Composable, int]:
    if pos >= len(terms):
        raise invalid("Malformed domain: an operator lacks its operands")
    term = terms[pos]
    if term in ("&", "|"):
        left, pos = _expr(model, terms, pos + 1, params)
        right, pos = _expr(model, terms, pos, params)
        joiner = sql.SQL(" AND " if term == "&" else " OR ")
        return sql.SQL("({})").format(joiner.join([left, right])), pos
    if term == "!":
        inner, pos = _expr(model, terms, pos + 1, params)
        return sql.SQL("(NOT {})").format(inner), pos
    if _is_leaf(term):
        return _leaf(model, term, params), pos + 1
    raise invalid(f"Invalid domain term {term!r}")


def to_sql(model: ModelSpec, domain: object, params: list[Any]) -> sql.Composable:
    """A boolean SQL expression for ``domain`` (``TRUE`` for an empty one) with ``%s``
    placeholders; their values are appended to ``params`` in order."""
    if domain in (None, False):
        return sql.SQL("TRUE")
    if not isinstance(domain, list | tuple):
        raise invalid(f"Invalid domain {domain!r}")
    parts: list[sql.Composable] = []
    pos = 0
    while pos < len(domain):
        part, pos = _expr(model, domain, pos, params)
        parts.append(part)
    if not parts:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(parts)
