"""Journal entries: create, post, reset to draft, cancel -- with the finance rules.

Every function runs inside the caller's transaction (``db.Database.run``), so a rule
that fails rolls everything back. The database enforces the same rules (schema.py);
the checks here exist to answer with Odoo's error types and messages.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ledgerdrill.platforms.sandbox.erp.errors import (
    MissingError,
    ServerError,
    UserError,
    ValidationError,
)

Conn = psycopg.Connection[tuple[Any, ...]]
CENT = Decimal("0.01")
MOVE_FIELDS = {"move_type", "journal_id", "partner_id", "date", "ref", "line_ids", "narration"}
LINE_FIELDS = {"account_id", "partner_id", "name", "debit", "credit", "balance"}
DEFAULT_JOURNAL_TYPE = {
    "entry": "general",
    "out_invoice": "sale",
    "out_refund": "sale",
    "in_invoice": "purchase",
    "in_refund": "purchase",
}


def _amount(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError(f"{what} must be a number, not {value!r}")
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise ValidationError(f"{what} must be a number, not {value!r}") from exc
    if not amount.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
        raise ValidationError(f"{what} must be finite")
    return amount.quantize(CENT)


def _int_id(value: object, what: str) -> int:
    if isinstance(value, list | tuple) and value:
        value = value[0]  # a many2one given back as [id, name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be a record id, not {value!r}")
    return value


def _lines(commands: object) -> list[dict[str, Any]]:
    if commands in (None, False):
        return []
    if not isinstance(commands, list | tuple):
        raise ValidationError("line_ids must be a list of commands")
    lines: list[dict[str, Any]] = []
    for command in commands:
        # only Command.create (0, 0, vals): a new entry has no lines to link or update
        if not (isinstance(command, list | tuple) and len(command) == 3 and command[0] == 0):
            raise ValidationError(f"unsupported one2many command {command!r} (only (0, 0, vals))")
        vals = command[2]
        if not isinstance(vals, Mapping):
            raise ValidationError("a line's values must be a dict")
        unknown = set(vals) - LINE_FIELDS
        if unknown:
            raise ServerError(
                f"Invalid field {sorted(unknown)[0]!r} on model 'account.move.line'",
                "builtins.ValueError",
            )
        if "balance" in vals and "debit" not in vals and "credit" not in vals:
            balance = _amount(vals["balance"], "balance")
            debit, credit = max(balance, Decimal(0)), max(-balance, Decimal(0))
        else:
            debit = _amount(vals.get("debit", 0), "debit")
            credit = _amount(vals.get("credit", 0), "credit")
        if debit < 0 or credit < 0 or (debit and credit):
            raise ValidationError("Wrong credit or debit value in accounting entry!")
        lines.append(
            {
                "account_id": _int_id(vals.get("account_id"), "account_id"),
                "partner_id": _int_id(vals["partner_id"], "partner_id")
                if vals.get("partner_id")
                else None,
                "name": str(vals["name"]) if vals.get("name") else None,
                "debit": debit,
                "credit": credit,
            }
        )
    return lines


def _journal(conn: Conn, vals: Mapping[str, Any], move_type: str) -> int:
    if vals.get("journal_id"):
        journal_id = _int_id(vals["journal_id"], "journal_id")
        row = conn.execute("SELECT id FROM account_journal WHERE id = %s", (journal_id,)).fetchone()
    else:
        kind = DEFAULT_JOURNAL_TYPE.get(move_type, "general")
        row = conn.execute(
            "SELECT id FROM account_journal WHERE type = %s ORDER BY id LIMIT 1", (kind,)
        ).fetchone()
    if row is None:
        raise ValidationError(f"journal {vals.get('journal_id')!r} does not exist")
    return int(row[0])


def duplicate_ref_error(conn: Conn, ref: str) -> ValidationError:
    row = conn.execute("SELECT id, name, state FROM account_move WHERE ref = %s", (ref,)).fetchone()
    if row is None:  # deleted meanwhile: still a conflict from the client's point of view
        return ValidationError(f"A journal entry with reference {ref!r} already exists.")
    move_id, name, state = row
    return ValidationError(
        f"A journal entry with reference {ref!r} already exists: "
        f"account.move({move_id},) {name} ({state})."
    )


def create_move(conn: Conn, vals: Mapping[str, Any], uid: int) -> int:
    unknown = set(vals) - MOVE_FIELDS
    if unknown:
        raise ServerError(
            f"Invalid field {sorted(unknown)[0]!r} on model 'account.move'", "builtins.ValueError"
        )
    move_type = str(vals.get("move_type") or "entry")
    if move_type not in DEFAULT_JOURNAL_TYPE:
        raise ValidationError(f"Wrong value for account.move.move_type: {move_type!r}")
    journal_id = _journal(conn, vals, move_type)
    lines = _lines(vals.get("line_ids"))
    date = dt.date.fromisoformat(str(vals["date"])) if vals.get("date") else dt.date.today()
    ref = str(vals["ref"]) if vals.get("ref") else None
    partner = _int_id(vals["partner_id"], "partner_id") if vals.get("partner_id") else None
    accounts = {line["account_id"] for line in lines}
    if accounts:
        found = conn.execute(
            "SELECT count(*) FROM account_account WHERE id = ANY(%s)", (list(accounts),)
        ).fetchone()
        if found is None or found[0] != len(accounts):
            raise ValidationError(f"unknown account among {sorted(accounts)}")
    try:
        # a savepoint, so a duplicate ref leaves the transaction usable for the lookup
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO account_move (ref, move_type, journal_id, partner_id, date,"
                " amount_total, create_uid) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    ref,
                    move_type,
                    journal_id,
                    partner,
                    date,
                    sum((line["debit"] for line in lines), Decimal(0)),
                    uid,
                ),
            ).fetchone()
    except pg_errors.UniqueViolation:
        assert ref is not None
        raise duplicate_ref_error(conn, ref) from None
    assert row is not None
    move_id = int(row[0])
    for line in lines:
        conn.execute(
            "INSERT INTO account_move_line (move_id, account_id, journal_id, partner_id, name,"
            " date, debit, credit) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                move_id,
                line["account_id"],
                journal_id,
                line["partner_id"] or partner,
                line["name"],
                date,
                line["debit"],
                line["credit"],
            ),
        )
    return move_id


def _lock_moves(conn: Conn, ids: Sequence[int], uid: int) -> list[tuple[Any, ...]]:
    wanted = sorted({_int_id(i, "id") for i in ids})
    rows = conn.execute(
        "SELECT m.id, m.name, m.state, m.date, m.journal_id, j.code FROM account_move m"
        " JOIN account_journal j ON j.id = m.journal_id"
        " WHERE m.id = ANY(%s) ORDER BY m.id FOR UPDATE OF m",
        (wanted,),
    ).fetchall()
    missing = sorted(set(wanted) - {int(r[0]) for r in rows})
    if missing:
        raise MissingError(
            "Record does not exist or has been deleted.\n"
            f"(Record: account.move({', '.join(map(str, missing))},), User: {uid})"
        )
    return rows


def _next_names(conn: Conn, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Lock each (journal, year) sequence row in a fixed order (no deadlock between two
    posters) and return its next number. The row lock is held until COMMIT, so a
    concurrent poster waits, and a rollback gives the number back: no gap, no reuse."""
    numbers: dict[tuple[int, int], int] = {}
    for journal_id, year in sorted(set(keys)):
        conn.execute(
            "INSERT INTO account_sequence (journal_id, year) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (journal_id, year),
        )
        row = conn.execute(
            "SELECT next_number FROM account_sequence WHERE journal_id = %s AND year = %s"
            " FOR UPDATE",
            (journal_id, year),
        ).fetchone()
        assert row is not None
        numbers[(journal_id, year)] = int(row[0])
    return numbers


def post_moves(conn: Conn, ids: Sequence[int], uid: int) -> None:
    rows = _lock_moves(conn, ids, uid)
    for move_id, name, state, _date, _journal, _code in rows:
        if state == "posted":
            raise UserError(f"The entry {name} (id {move_id}) is already posted.")
        if state != "draft":
            raise UserError(f"Only draft entries can be posted; {name} (id {move_id}) is {state}.")
        totals = conn.execute(
            "SELECT count(*), coalesce(sum(debit), 0), coalesce(sum(credit), 0)"
            " FROM account_move_line WHERE move_id = %s",
            (move_id,),
        ).fetchone()
        assert totals is not None
        count, debit, credit = totals
        if not count:
            raise UserError("You need to add a line before posting.")
        if debit != credit:
            raise UserError(
                f"The move (id {move_id}) is not balanced.\n"
                f"The total of debits equals {debit} and the total of credits equals {credit}."
            )
    need = [(int(r[4]), r[3].year) for r in rows if r[1] == "/"]
    numbers = _next_names(conn, need)
    for move_id, old_name, _state, date, journal_id, code in rows:
        number = old_name
        if old_name == "/":  # a reset-to-draft entry keeps its number (as in Odoo)
            key = (int(journal_id), date.year)
            number = f"{code}/{date.year}/{numbers[key]:05d}"
            numbers[key] += 1
        conn.execute(
            "UPDATE account_move SET state = 'posted', name = %s, posted_at = now() WHERE id = %s",
            (number, move_id),
        )
        conn.execute(
            "UPDATE account_move_line SET parent_state = 'posted', move_name = %s"
            " WHERE move_id = %s",
            (number, move_id),
        )
    for (journal_id, year), next_number in numbers.items():
        conn.execute(
            "UPDATE account_sequence SET next_number = %s WHERE journal_id = %s AND year = %s",
            (next_number, journal_id, year),
        )


def set_state(conn: Conn, ids: Sequence[int], uid: int, target: str) -> None:
    """``button_draft`` (posted/cancelled -> draft) and ``button_cancel`` (draft -> cancel)."""
    rows = _lock_moves(conn, ids, uid)
    for move_id, name, state, *_ in rows:
        if target == "cancel" and state != "draft":
            raise UserError("Only draft journal entries can be cancelled.")
        if target == "draft" and state not in ("posted", "cancel"):
            raise UserError(f"The entry {name} (id {move_id}) is already a draft.")
    wanted = [int(r[0]) for r in rows]
    conn.execute("UPDATE account_move SET state = %s WHERE id = ANY(%s)", (target, wanted))
    conn.execute(
        "UPDATE account_move_line SET parent_state = %s WHERE move_id = ANY(%s)", (target, wanted)
    )
