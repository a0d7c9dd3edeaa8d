"""The models the reference ERP knows: which table, which fields, of which Odoo type.

This whitelist is the only source of SQL identifiers: a field name from a request is
looked up here and never pasted into SQL itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "id", "char", "bool", "float", "integer", "date", "datetime", "selection", "many2one",
    "one2many",
]  # fmt: skip


@dataclass(frozen=True)
class FieldSpec:
    kind: Kind
    column: str | None = None  # None: same as the field name; one2many have none
    relation: str | None = None  # model of a many2one / one2many
    inverse: str | None = None  # the many2one column on the related table (one2many)
    string: str = ""

    def col(self, name: str) -> str:
        return self.column or name


@dataclass(frozen=True)
class ModelSpec:
    name: str
    table: str
    fields: dict[str, FieldSpec]
    display_sql: str  # SQL expression (constant) for display_name over the table
    order: str = "id"
    searchable: bool = True
    methods: frozenset[str] = field(default_factory=frozenset)

    def stored(self, name: str) -> FieldSpec | None:
        spec = self.fields.get(name)
        return spec if spec is not None and spec.kind != "one2many" else None


READ = frozenset({"search_read", "search", "search_count", "read", "name_search", "fields_get"})
# every method that only reads, across models: run on a read transaction, not retried as a
# write. ``context_get`` is ``res.users``'s (clients call it right after logging in to
# learn the user's language and time zone: odoorpc, odooly)
READ_ONLY = READ | {"read_group", "context_get"}

_MOVE_DISPLAY = "CASE WHEN name = '/' THEN 'Draft Entry (* ' || id || ')' ELSE name END"

MODELS: dict[str, ModelSpec] = {
    # the models this ERP has, as Odoo lists its own: clients look a model up here before
    # they use it (odoorpc's ``env[...]``, erppeek's ``model()``, odooly); seeded from
    # this dict by ``ensure_schema``
    "ir.model": ModelSpec(
        "ir.model",
        "ir_model",
        {
            "id": FieldSpec("id"),
            "model": FieldSpec("char"),
            "name": FieldSpec("char"),
            "transient": FieldSpec("bool"),  # odooly reads both
            "abstract": FieldSpec("bool"),  # Odoo 19
        },
        "name",
        order="model, id",
        methods=READ,
    ),
    "res.company": ModelSpec(
        "res.company",
        "res_company",
        {"id": FieldSpec("id"), "name": FieldSpec("char"), "currency": FieldSpec("char")},
        "name",
        methods=READ,
    ),
    "res.partner": ModelSpec(
        "res.partner",
        "res_partner",
        {
            "id": FieldSpec("id"),
            "name": FieldSpec("char"),
            "email": FieldSpec("char"),
            "ref": FieldSpec("char"),
            "is_company": FieldSpec("bool"),
            "active": FieldSpec("bool"),
            "create_date": FieldSpec("datetime"),
        },
        "name",
        order="name, id",
        methods=READ | {"create"},
    ),
    "res.users": ModelSpec(
        "res.users",
        "res_users",
        {
            "id": FieldSpec("id"),
            "login": FieldSpec("char"),
            "partner_id": FieldSpec("many2one", relation="res.partner"),
            "company_id": FieldSpec("many2one", relation="res.company"),
            "active": FieldSpec("bool"),
        },
        "login",
        methods=READ | {"context_get"},
    ),
    "account.account": ModelSpec(
        "account.account",
        "account_account",
        {
            "id": FieldSpec("id"),
            "code": FieldSpec("char"),
            "name": FieldSpec("char"),
            "account_type": FieldSpec("selection"),
            "reconcile": FieldSpec("bool"),
        },
        "code || ' ' || name",
        order="code, id",
        methods=READ,
    ),
    "account.journal": ModelSpec(
        "account.journal",
        "account_journal",
        {
            "id": FieldSpec("id"),
            "code": FieldSpec("char"),
            "name": FieldSpec("char"),
            "type": FieldSpec("selection"),
            "default_account_id": FieldSpec("many2one", relation="account.account"),
        },
        "name",
        methods=READ,
    ),
    "account.move": ModelSpec(
        "account.move",
        "account_move",
        {
            "id": FieldSpec("id"),
            "name": FieldSpec("char"),
            "ref": FieldSpec("char"),
            "state": FieldSpec("selection"),
            "move_type": FieldSpec("selection"),
            "journal_id": FieldSpec("many2one", relation="account.journal"),
            "partner_id": FieldSpec("many2one", relation="res.partner"),
            "date": FieldSpec("date"),
            "amount_total": FieldSpec("float"),
            "line_ids": FieldSpec("one2many", relation="account.move.line", inverse="move_id"),
            "create_uid": FieldSpec("many2one", relation="res.users"),
            "create_date": FieldSpec("datetime"),
        },
        _MOVE_DISPLAY,
        order="date desc, name desc, id desc",
        # read_group: public on every model in Odoo (odoo/models.py); the ledger probe's totals
        methods=READ | {"create", "action_post", "button_draft", "button_cancel", "read_group"},
    ),
    "account.move.line": ModelSpec(
        "account.move.line",
        "account_move_line",
        {
            "id": FieldSpec("id"),
            "move_id": FieldSpec("many2one", relation="account.move"),
            "account_id": FieldSpec("many2one", relation="account.account"),
            "journal_id": FieldSpec("many2one", relation="account.journal"),
            "partner_id": FieldSpec("many2one", relation="res.partner"),
            "name": FieldSpec("char"),
            "date": FieldSpec("date"),
            "parent_state": FieldSpec("selection"),
            "move_name": FieldSpec("char"),
            "debit": FieldSpec("float"),
            "credit": FieldSpec("float"),
            "balance": FieldSpec("float"),
        },
        "coalesce(name, '')",
        order="date desc, move_id desc, id",
        methods=READ | {"read_group"},
    ),
}
