"""Odoo 19's External JSON-2 API: ``POST /json/2/<model>/<method>``, independent of HTTP.

What Odoo documents and serves (``content/developer/reference/external_api.rst`` of
odoo/documentation 19.0, ``addons/web/controllers/json2.py`` of odoo/odoo):

- the body is a JSON object of named parameters: ``ids`` (the records; empty or absent
  for an ``@api.model`` method), ``context``, and the method's own parameters;
- an API key as ``Authorization: bearer <key>``; ``X-Odoo-Database`` names the database;
- success: 200 and the method's return value as JSON (records as their ids);
- errors: a 4xx/5xx status and a JSON object ``{name, message, arguments, context,
  debug}``: 401 without a valid key (``werkzeug.exceptions.Unauthorized``, "Invalid
  apikey"), 404 for an unknown model or method, 422 when the parameters do not bind to
  the method's signature or when ``ids`` are given to an ``@api.model`` method
  (``werkzeug.exceptions.UnprocessableEntity``), 405 for another HTTP method than POST;
  Odoo's own exceptions carry their status (``http_status`` in ``odoo/exceptions.py``:
  a user error 422, an access error 403, a missing record 404); anything else is 500.

Each call is its own transaction, as in Odoo. The methods' signatures are Odoo's
(``ledgerdrill.odoo_api``, shared with the harness's own clients); a parameter Odoo has
and this ERP ignores is still accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgerdrill.odoo_api import REQUIRED, SIGNATURES
from ledgerdrill.platforms.sandbox.erp.errors import OdooException
from ledgerdrill.platforms.sandbox.erp.rpc import as_odoo, error_data
from ledgerdrill.platforms.sandbox.erp.spec import MODELS


class Json2Error(Exception):
    """An error of the HTTP layer (not the ORM's): its status and werkzeug's name."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


def unauthorized() -> Json2Error:
    return Json2Error(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey")


def not_found(message: str) -> Json2Error:
    return Json2Error(404, "werkzeug.exceptions.NotFound", message)


def unprocessable(message: str) -> Json2Error:
    return Json2Error(422, "werkzeug.exceptions.UnprocessableEntity", message)


def bearer_key(authorization: str | None) -> str:
    """The API key of an ``Authorization: bearer <key>`` header (scheme case-insensitive)."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized()
    return key.strip()


@dataclass(frozen=True)
class Call:
    model: str
    method: str
    args: list[Any]  # ids first, for a record method
    kwargs: dict[str, Any]
    context: dict[str, Any]


def bind(model: str, method: str, body: object) -> Call:
    """The call ``body`` asks for, or the 404/422 Odoo would answer."""
    spec = MODELS.get(model)
    if spec is None:
        raise not_found(f"the model {model!r} does not exist")
    signature = SIGNATURES.get(method)
    if signature is None or method not in spec.methods or method.startswith("_"):
        raise not_found(f"The method {method!r} does not exist on the model {model!r}")
    if not isinstance(body, Mapping):
        raise Json2Error(400, "werkzeug.exceptions.BadRequest",
                         "could not parse the body, expecting a json object")  # fmt: skip
    params = dict(body)
    ids = params.pop("ids", None)
    ids = [] if ids is None else ids
    context = params.pop("context", None)
    context = {} if context is None else context
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise unprocessable(f"ids must be a list of integers, not {ids!r}")
    if not isinstance(context, Mapping):
        raise unprocessable(f"context must be an object, not {context!r}")
    if signature.model_level and ids:
        raise unprocessable(f"cannot call {model}.{method} with ids")
    names = [name for name, _ in signature.params]
    unknown = [name for name in params if name not in names]
    if unknown:
        raise unprocessable(f"{method}() got an unexpected keyword argument {unknown[0]!r}")
    missing = [n for n, d in signature.params if d is REQUIRED and n not in params]
    if missing:
        raise unprocessable(f"{method}() missing a required argument: {missing[0]!r}")
    args: list[Any] = [] if signature.model_level else [ids]
    return Call(model, method, args, params, dict(context))


# methods whose Python result is a recordset: JSON-2 answers its ids, always a list (a
# ``create`` of one dict too, where XML-RPC answers the bare id)
RETURNS_RECORDS = frozenset({"create", "search"})


def result(method: str, value: Any) -> Any:
    if method in RETURNS_RECORDS and isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return value


# Odoo's exceptions and their HTTP status (``http_status`` in ``odoo/exceptions.py``)
_STATUS_BY_NAME = {
    "odoo.exceptions.UserError": 422,
    "odoo.exceptions.ValidationError": 422,
    "odoo.exceptions.AccessError": 403,
    "odoo.exceptions.AccessDenied": 403,
    "odoo.exceptions.MissingError": 404,
    "odoo.http.SessionExpiredException": 403,
}


def error(
    exc: BaseException, context: Mapping[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """(status, body) of a failed call: Odoo's documented error object."""
    if isinstance(exc, Json2Error):
        return exc.status, {
            "name": exc.name,
            "message": exc.message,
            "arguments": [exc.message, exc.status],
            "context": dict(context or {}),
            "debug": f"{exc.name}: {exc.status} {exc.message}",
        }
    odoo: OdooException = as_odoo(exc)
    status = _STATUS_BY_NAME.get(odoo.odoo_name, 500)
    return status, {**error_data(odoo), "context": dict(context or {})}


def doc_model(model: str) -> dict[str, Any]:
    """``/doc-bearer/<model>.json``: the model's fields and methods with their
    signatures, in the shape of Odoo's ``/doc/<model>.json`` (``addons/web/controllers/
    doc.py``), for clients that discover the API."""
    spec = MODELS.get(model)
    if spec is None:
        raise not_found(f"the model {model!r} does not exist")
    fields = {
        name: {"name": name, "type": f.kind, "string": f.string or name.replace("_", " ").title(),
               **({"relation": f.relation} if f.relation else {})}
        for name, f in spec.fields.items()
    }  # fmt: skip
    methods: dict[str, Any] = {}
    for method in sorted(spec.methods & SIGNATURES.keys()):
        signature = SIGNATURES[method]
        methods[method] = {
            "signature": signature.text(),
            "parameters": {
                name: ({} if default is REQUIRED else {"default": default})
                for name, default in signature.params
            },
            **({"api": ["model"]} if signature.model_level else {}),
        }
    return {"model": model, "name": model.replace(".", " ").title(), "fields": fields,
            "methods": methods}  # fmt: skip
