"""``execute_kw``/``call_kw``: (model, method, args, kwargs) to a result, Odoo-shaped.

Values come back as Odoo returns them: ``False`` for empty, many2one as
``[id, display_name]``, one2many as a list of ids, dates as ``YYYY-MM-DD`` strings,
datetimes as ``YYYY-MM-DD HH:MM:SS`` (UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from psycopg import sql

from ledgerdrill.platforms.sandbox.erp import ledger
from ledgerdrill.platforms.sandbox.erp.domain import column, invalid, to_sql
from ledgerdrill.platforms.sandbox.erp.errors import AccessError, MissingError, ServerError
from ledgerdrill.platforms.sandbox.erp.ledger import Conn
from ledgerdrill.platforms.sandbox.erp.spec import MODELS, ModelSpec

AGGREGATES = {"sum": "sum", "avg": "avg", "min": "min", "max": "max", "count": "count"}
NUMERIC = ("float", "integer")
PARTNER_FIELDS = {"name", "email", "ref", "is_company"}


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], i: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def model_spec(name: str) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        raise ServerError(f"Object {name} doesn't exist", "odoo.exceptions.UserError")
    return spec


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return False
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _order(model: ModelSpec, order: object) -> sql.Composable:
    text = str(order) if order else model.order
    parts: list[sql.Composable] = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2:
            raise invalid(f"Invalid order {text!r}")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise invalid(f"Invalid order {text!r}")
        parts.append(sql.SQL("{} {}").format(column(model, words[0]), sql.SQL(direction)))
    return sql.SQL(", ").join(parts)


def _field_names(model: ModelSpec, fields: object) -> list[str]:
    if not fields:
        return [*model.fields, "display_name"]
    if not isinstance(fields, list | tuple):
        raise invalid("fields must be a list of field names")
    for name in fields:
        if name not in model.fields and name != "display_name":
            raise invalid(f"Invalid field {name!r} on model {model.name!r}")
    return ["id", *(str(f) for f in fields if f != "id")]


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(f"{what} must be an integer, not {value!r}")
    return int(value)


def _limit_offset(limit: object, offset: object, params: list[Any]) -> sql.Composable:
    params.extend([_int(limit, "limit") if limit else None, _int(offset or 0, "offset")])
    return sql.SQL(" LIMIT %s OFFSET %s")


def search_ids(
    conn: Conn,
    model: ModelSpec,
    domain: object,
    *,
    offset: object = 0,
    limit: object = None,
    order: object = None,
) -> list[int]:
    params: list[Any] = []
    where = to_sql(model, domain, params)
    query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY {}").format(
        sql.Identifier(model.table), where, _order(model, order)
    ) + _limit_offset(limit, offset, params)
    return [int(r[0]) for r in conn.execute(query, params).fetchall()]


def read_rows(
    conn: Conn, model: ModelSpec, ids: Sequence[int], fields: object
) -> list[dict[str, Any]]:
    """``read``: the records in the order of ``ids``."""
    names = _field_names(model, fields)
    stored = [n for n in names if model.stored(n) is not None]
    select = [sql.Identifier(model.stored(n).col(n)) for n in stored]  # type: ignore[union-attr]
    select.append(sql.SQL(model.display_sql))  # type: ignore[arg-type]  # constant from spec.py
    query = sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s)").format(
        sql.SQL(", ").join(select), sql.Identifier(model.table)
    )
    by_id: dict[int, dict[str, Any]] = {}
    for row in conn.execute(query, (list(ids),)).fetchall():
        record = {n: _value(model.fields[n].kind, v) for n, v in zip(stored, row, strict=False)}
        if "display_name" in names:
            record["display_name"] = row[-1]
        by_id[int(row[0])] = record
    for name in names:
        spec = model.fields.get(name)
        if spec is not None and spec.kind == "many2one":
            _many2one(conn, spec.relation or "", name, by_id.values())
        elif spec is not None and spec.kind == "one2many":
            _one2many(conn, spec.relation or "", spec.inverse or "", name, by_id)
    return [by_id[i] for i in ids if i in by_id]


def _many2one(conn: Conn, relation: str, name: str, records: Any) -> None:
    wanted = {r[name] for r in records if r[name]}
    target = MODELS[relation]
    labels: dict[int, str] = {}
    if wanted:
        query = sql.SQL("SELECT id, {} FROM {} WHERE id = ANY(%s)").format(
            sql.SQL(target.display_sql),
            sql.Identifier(target.table),
        )
        labels = {int(i): str(label) for i, label in conn.execute(query, (list(wanted),))}
    for record in records:
        if record[name]:
            record[name] = [record[name], labels.get(record[name], "")]


def _one2many(conn: Conn, relation: str, inverse: str, name: str, by_id: dict[int, Any]) -> None:
    for record in by_id.values():
        record[name] = []
    query = sql.SQL("SELECT {}, id FROM {} WHERE {} = ANY(%s) ORDER BY id").format(
        sql.Identifier(inverse), sql.Identifier(MODELS[relation].table), sql.Identifier(inverse)
    )
    for parent, child in conn.execute(query, (list(by_id),)):
        by_id[int(parent)][name].append(int(child))


def read_group(conn: Conn, model: ModelSpec, args: Sequence[Any], kw: Mapping[str, Any]) -> Any:
    domain = _arg(args, kw, 0, "domain", [])
    fields = _arg(args, kw, 1, "fields", [])
    groupby = _arg(args, kw, 2, "groupby", [])
    lazy = bool(_arg(args, kw, 6, "lazy", True))
    groups = [groupby] if isinstance(groupby, str) else list(groupby or [])
    if not groups:
        raise invalid("read_group needs a groupby")
    used = groups[:1] if lazy else groups
    for g in used:
        if model.stored(g) is None or ":" in g:
            raise invalid(f"Invalid groupby {g!r} on model {model.name!r}")
    select: list[sql.Composable] = [column(model, g) for g in used]
    select.append(sql.SQL("count(*)"))
    aliases: list[str] = []
    for spec in fields or []:
        alias, _, agg = str(spec).partition(":")
        fname = alias
        if "(" in agg and agg.endswith(")"):
            agg, fname = agg[:-1].split("(", 1)
        field = model.stored(fname)
        if field is None:
            raise invalid(f"Invalid field {fname!r} on model {model.name!r}")
        if fname in used or (not agg and field.kind not in NUMERIC):
            continue  # the groupby itself, or a field with no default aggregate
        func = AGGREGATES.get(agg or "sum")
        if func is None or (func != "count" and field.kind not in NUMERIC):
            raise invalid(f"Invalid aggregate {agg!r} for field {fname!r}")
        select.append(sql.SQL("{}({})").format(sql.SQL(func), column(model, fname)))
        aliases.append(alias)
    params: list[Any] = []
    where = to_sql(model, domain, params)
    keys = sql.SQL(", ").join([column(model, g) for g in used])
    query = sql.SQL("SELECT {} FROM {} WHERE {} GROUP BY {} ORDER BY {}").format(
        sql.SQL(", ").join(select), sql.Identifier(model.table), where, keys, keys
    ) + _limit_offset(_arg(args, kw, 4, "limit", None), _arg(args, kw, 3, "offset", 0), params)
    result: list[dict[str, Any]] = []
    for row in conn.execute(query, params).fetchall():
        group: dict[str, Any] = {}
        for i, g in enumerate(used):
            group[g] = _value(model.fields[g].kind, row[i])
        group[f"{used[0]}_count" if lazy else "__count"] = int(row[len(used)])
        for alias, value in zip(aliases, row[len(used) + 1 :], strict=True):
            group[alias] = _value("float", value) or 0.0
        group["__domain"] = [*(domain or []), *[(g, "=", row[i]) for i, g in enumerate(used)]]
        if lazy and len(groups) > 1:
            group["__context"] = {"group_by": groups[1:]}
        result.append(group)
    for g in used:
        spec = model.fields[g]
        if spec.kind == "many2one":
            _many2one(conn, spec.relation or "", g, result)
    return result


def _create(conn: Conn, model: ModelSpec, vals_list: Any, uid: int) -> Any:
    single = isinstance(vals_list, Mapping)
    batch = [vals_list] if single else list(vals_list or [])
    ids: list[int] = []
    for vals in batch:
        if not isinstance(vals, Mapping):
            raise invalid("create expects a dict of values")
        if model.name == "account.move":
            ids.append(ledger.create_move(conn, vals, uid))
            continue
        unknown = set(vals) - PARTNER_FIELDS
        if unknown or not vals.get("name"):
            raise invalid(f"Invalid or missing fields {sorted(unknown) or ['name']} on res.partner")
        row = conn.execute(
            "INSERT INTO res_partner (name, email, ref, is_company) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (
                str(vals["name"]),
                vals.get("email") or None,
                vals.get("ref") or None,
                bool(vals.get("is_company")),
            ),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids[0] if single else ids


def _ids(value: object) -> list[int]:
    items = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        raise invalid(f"expected record ids, got {value!r}")
    return [int(i) for i in items if isinstance(i, int)]


def _search(conn: Conn, model: ModelSpec, args: Sequence[Any], kw: Mapping[str, Any]) -> list[int]:
    # search(domain, offset, limit, order) and search_read(domain, fields, offset, limit, order)
    return search_ids(
        conn,
        model,
        _arg(args, kw, 0, "domain", []),
        offset=_arg(args, kw, 1, "offset", 0),
        limit=_arg(args, kw, 2, "limit", None),
        order=_arg(args, kw, 3, "order", None),
    )


def execute(
    conn: Conn,
    uid: int,
    *,
    model_name: str,
    method: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> Any:
    model = model_spec(model_name)
    if method.startswith("_"):
        raise AccessError(
            f"Private methods (such as {model_name}.{method}) cannot be called remotely."
        )
    if method not in model.methods:
        raise ServerError(
            f"The method '{method}' does not exist on the model '{model_name}'",
            "builtins.AttributeError",
        )
    kw = {k: v for k, v in kwargs.items() if k != "context"}  # no languages/companies here
    if method == "search_read":
        fields = _arg(args, kw, 1, "fields", None)
        ids = _search(conn, model, [*args[:1], *args[2:]], kw)
        return read_rows(conn, model, ids, fields)
    if method == "search":
        return _search(conn, model, args, kw)
    if method == "search_count":
        params: list[Any] = []
        where = to_sql(model, _arg(args, kw, 0, "domain", []), params)
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            sql.Identifier(model.table), where
        )
        row = conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0
    if method == "read":
        ids = _ids(_arg(args, kw, 0, "ids", []))
        rows = read_rows(conn, model, ids, _arg(args, kw, 1, "fields", None))
        if len(rows) != len(set(ids)):
            missing = sorted(set(ids) - {r["id"] for r in rows})
            raise MissingError(
                "Record does not exist or has been deleted.\n"
                f"(Record: {model_name}({', '.join(map(str, missing))},), User: {uid})"
            )
        return rows
    if method == "fields_get":
        described: dict[str, Any] = {}
        for n, f in model.fields.items():
            described[n] = {"type": f.kind, "string": f.string or n.replace("_", " ").title()}
            if f.relation:
                described[n]["relation"] = f.relation
        return described
    if method == "name_search":
        ids = search_ids(conn, model, [], limit=_arg(args, kw, 3, "limit", 100))
        return [[r["id"], r["display_name"]] for r in read_rows(conn, model, ids, ["display_name"])]
    if method == "read_group":
        return read_group(conn, model, args, kw)
    if method == "context_get":  # res.users: the caller's context (one language, UTC)
        return {"lang": "en_US", "tz": "UTC", "uid": uid}
    if method == "create":
        return _create(conn, model, _arg(args, kw, 0, "vals_list", None), uid)
    ids = _ids(_arg(args, kw, 0, "ids", []))
    if method == "action_post":
        ledger.post_moves(conn, ids, uid)
        return False  # Odoo 17's action_post returns False
    ledger.set_state(conn, ids, uid, "draft" if method == "button_draft" else "cancel")
    return True
