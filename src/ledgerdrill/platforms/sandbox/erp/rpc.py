"""Odoo's envelopes: JSON-RPC 2.0 results and error objects, XML-RPC responses and faults.

Error objects follow ``odoo.http.serialize_exception`` and ``JsonRPCDispatcher.handle_error``:
code 200 "Odoo Server Error" (100 "Odoo Session Expired" for an expired session) with
``data`` = {name, message, arguments, debug, context}; XML-RPC faults use the codes of
``odoo.service.wsgi_server.xmlrpc_handle_exception_int``.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Mapping
from typing import Any

from ledgerdrill.platforms.sandbox.erp.errors import OdooException, ServerError, SessionExpired


def as_odoo(exc: BaseException) -> OdooException:
    if isinstance(exc, OdooException):
        return exc
    # a bug of ours: same shape as Odoo leaking a Python exception
    return ServerError(str(exc) or type(exc).__name__, f"builtins.{type(exc).__name__}")


def error_data(exc: OdooException) -> dict[str, Any]:
    return {
        "name": exc.odoo_name,
        "message": exc.message,
        "arguments": [exc.message],
        # Odoo puts the server traceback here; ours would only show our internals
        "debug": f"{exc.odoo_name}: {exc.message}",
        "context": {},
    }


def json_result(request_id: object, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def json_error(request_id: object, exc: BaseException) -> dict[str, Any]:
    odoo = as_odoo(exc)
    expired = isinstance(odoo, SessionExpired)
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": 100 if expired else 200,
            "message": "Odoo Session Expired" if expired else "Odoo Server Error",
            "data": error_data(odoo),
        },
    }


def xml_safe(value: Any) -> Any:
    """XML-RPC cannot marshal None; Odoo's marshaller sends False instead."""
    if value is None:
        return False
    if isinstance(value, Mapping):
        return {str(k): xml_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [xml_safe(v) for v in value]
    return value


def xml_result(result: Any) -> bytes:
    body = xmlrpc.client.dumps((xml_safe(result),), methodresponse=True, allow_none=False)
    return body.encode()


def xml_fault(exc: BaseException) -> bytes:
    odoo = as_odoo(exc)
    fault = xmlrpc.client.Fault(odoo.fault_code, odoo.message)
    return xmlrpc.client.dumps(fault, methodresponse=True, allow_none=False).encode()


# ``/xmlrpc/<service>`` (no ``/2``) is Odoo's historical entry point, kept for old clients:
# its faults carry a string code (``xmlrpc_handle_exception_string`` in Odoo's
# ``odoo/addons/base/controllers/rpc.py``). The checks run in Odoo's order: an access error
# is a user error there too, and must be named as the former.
_LEGACY_WARNINGS = (
    ("odoo.exceptions.MissingError", "MissingError"),
    ("odoo.exceptions.AccessError", "AccessError"),
    ("odoo.exceptions.UserError", "UserError"),
    ("odoo.exceptions.ValidationError", "UserError"),
)


def xml_fault_legacy(exc: BaseException) -> bytes:
    odoo = as_odoo(exc)
    code: Any  # a string here: typeshed says int, the protocol allows any value
    kind = next((k for name, k in _LEGACY_WARNINGS if name == odoo.odoo_name), None)
    if odoo.odoo_name == "odoo.exceptions.AccessDenied":
        code, text = "AccessDenied", odoo.message
    elif kind is not None:
        code, text = f"warning -- {kind}\n\n{odoo.message}", ""
    else:  # Odoo: the exception's text, and its traceback as the fault string
        code, text = odoo.message, error_data(odoo)["debug"]
    fault = xmlrpc.client.Fault(code, text)
    return xmlrpc.client.dumps(fault, methodresponse=True, allow_none=False).encode()


def xml_request(body: bytes) -> tuple[tuple[Any, ...], str]:
    try:
        params, method = xmlrpc.client.loads(body, use_builtin_types=True)
    except Exception as exc:  # expat raises its own error types
        raise ServerError(f"malformed XML-RPC request: {exc}", "builtins.ValueError") from None
    if not method:
        raise ServerError("XML-RPC request without a method name", "builtins.ValueError")
    return params, method
