"""Odoo's external API as the harness's clients and the reference ERP both speak it: the
two APIs a target can choose (``erp_api``) and, for JSON-2, the named parameters of the
ORM methods used over it.

JSON-2 (Odoo 19) takes named parameters only, where XML-RPC and JSON-RPC take positional
ones: ``json2_body`` names a positional call's arguments from the method's signature (the
records' ids first, for a method that is not ``@api.model``). The signatures are Odoo
17-19's (``odoo/models.py``; ``read_group`` as before its Odoo 19 replacement), for the
methods the harness and the reference ERP use. Standard library only: the locustfile
imports it in every Locust process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ErpApi = Literal["jsonrpc", "json2"]
ERP_APIS: tuple[ErpApi, ...] = ("jsonrpc", "json2")

REQUIRED = object()  # a parameter without a default


@dataclass(frozen=True)
class Signature:
    params: tuple[tuple[str, Any], ...]  # (name, default or REQUIRED), in order
    model_level: bool  # ``@api.model``: called without ids

    def text(self) -> str:
        shown = [n if d is REQUIRED else f"{n}={d!r}" for n, d in self.params]
        return f"({', '.join(shown)})"


def _sig(*params: tuple[str, Any], model: bool) -> Signature:
    return Signature(tuple(params), model)


SIGNATURES: dict[str, Signature] = {
    "search_read": _sig(
        ("domain", None),
        ("fields", None),
        ("offset", 0),
        ("limit", None),
        ("order", None),
        model=True,
    ),
    "search": _sig(
        ("domain", REQUIRED), ("offset", 0), ("limit", None), ("order", None), model=True
    ),
    "search_count": _sig(("domain", REQUIRED), ("limit", None), model=True),
    "read": _sig(("fields", None), ("load", "_classic_read"), model=False),
    "create": _sig(("vals_list", REQUIRED), model=True),
    "fields_get": _sig(("allfields", None), ("attributes", None), model=True),
    "name_search": _sig(
        ("name", ""), ("domain", None), ("operator", "ilike"), ("limit", 100), model=True
    ),
    "read_group": _sig(
        ("domain", REQUIRED),
        ("fields", REQUIRED),
        ("groupby", REQUIRED),
        ("offset", 0),
        ("limit", None),
        ("orderby", False),
        ("lazy", True),
        model=True,
    ),
    "action_post": _sig(model=False),
    "button_draft": _sig(model=False),
    "button_cancel": _sig(model=False),
    "context_get": _sig(model=True),
}


def json2_body(
    method: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON-2 body of a call written positionally (``call_kw``'s ``args``/``kwargs``).
    A method without a known signature, or more positional arguments than it has, is a
    caller's bug: ``ValueError`` rather than a guessed name."""
    signature = SIGNATURES.get(method)
    if signature is None:
        raise ValueError(f"no JSON-2 signature known for method {method!r}")
    body: dict[str, Any] = {}
    rest = list(args)
    if not signature.model_level:
        ids = rest.pop(0) if rest else []
        body["ids"] = [ids] if isinstance(ids, int) else list(ids)
    names = [name for name, _ in signature.params]
    if len(rest) > len(names):
        raise ValueError(f"{method}() takes {len(names)} arguments, {len(rest)} given")
    body.update(zip(names, rest, strict=False))
    for name, value in (kwargs or {}).items():
        if name in body:
            raise ValueError(f"{method}() got multiple values for argument {name!r}")
        body[name] = value
    if method == "create" and isinstance(body.get("vals_list"), Mapping):
        body["vals_list"] = [body["vals_list"]]  # one call shape: a list, ids back
    return body
