"""Exceptions named like Odoo's, so error objects carry the names clients expect.

``odoo_name`` is what goes into ``error.data.name`` (JSON-RPC); ``fault_code`` is the
XML-RPC fault code Odoo's ``xmlrpc_handle_exception_int`` uses (1 application error,
2 warning/user error, 3 access denied, 4 access error).
"""

from __future__ import annotations


class OdooException(Exception):
    odoo_name = "odoo.exceptions.UserError"
    fault_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(OdooException):
    odoo_name = "odoo.exceptions.UserError"


class ValidationError(UserError):
    odoo_name = "odoo.exceptions.ValidationError"


class MissingError(UserError):
    odoo_name = "odoo.exceptions.MissingError"


class AccessError(OdooException):
    odoo_name = "odoo.exceptions.AccessError"
    fault_code = 4


class AccessDenied(OdooException):
    odoo_name = "odoo.exceptions.AccessDenied"
    fault_code = 3

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class SessionExpired(OdooException):
    """JSON-RPC code 100: the client must log in again."""

    odoo_name = "odoo.http.SessionExpiredException"
    fault_code = 3

    def __init__(self, message: str = "Session expired") -> None:
        super().__init__(message)


class ServerError(OdooException):
    """Anything that is not the user's fault (a bad release, the database gone...).
    ``odoo_name`` mimics the Python exception type Odoo would have leaked."""

    fault_code = 1

    def __init__(self, message: str, odoo_name: str = "builtins.RuntimeError") -> None:
        super().__init__(message)
        self.odoo_name = odoo_name


class CommitNotConfirmed(ServerError):
    """COMMIT returned, but the outcome is unknown to the client: PostgreSQL cancelled the
    wait for the synchronous standby, or the connection dropped during COMMIT. The entry
    may exist; a failover now may lose it. Clients must treat this as *unknown*."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"commit not confirmed by the synchronous standby: {why}",
            "ledgerdrill.CommitNotConfirmed",
        )
