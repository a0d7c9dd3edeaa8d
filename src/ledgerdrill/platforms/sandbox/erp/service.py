"""What the endpoints do, independent of HTTP: Odoo's ``common``, ``object`` and ``db``
services, ``call_kw`` for session users, and the release's deliberate defects."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from ledgerdrill.platforms.sandbox.erp import json2, models
from ledgerdrill.platforms.sandbox.erp.auth import Authenticator
from ledgerdrill.platforms.sandbox.erp.config import ErpConfig
from ledgerdrill.platforms.sandbox.erp.db import Database
from ledgerdrill.platforms.sandbox.erp.errors import AccessDenied, ServerError
from ledgerdrill.platforms.sandbox.erp.ledger import Conn
from ledgerdrill.platforms.sandbox.erp.sessions import Session, SessionStore
from ledgerdrill.platforms.sandbox.erp.spec import READ_ONLY

SLOW_POSTING_S = 2.0


def version_info(release: str) -> dict[str, Any]:
    """``common.version`` in Odoo's shape, numbered by the sandbox's release."""
    numbers = [int(n) for n in re.findall(r"\d+", release)[:3]]
    numbers += [0] * (3 - len(numbers))
    return {
        "server_version": release,
        "server_version_info": [*numbers, "final", 0, ""],
        "server_serie": f"{numbers[0]}.{numbers[1]}",
        "protocol_version": 1,
    }


def _args(args: object, method: str, count: int) -> list[Any]:
    if not isinstance(args, list | tuple) or len(args) < count:
        raise ServerError(f"{method}() missing required positional arguments", "builtins.TypeError")
    return list(args)


class ErpService:
    def __init__(self, config: ErpConfig, replica: str) -> None:
        self.config = config
        self.replica = replica
        self.db = Database(config.dsn.get_secret_value(), replica)
        self.sessions = SessionStore(
            config.redis_url.get_secret_value() if config.redis_url else None
        )
        self.auth = Authenticator(self.db, config.database)

    def open(self) -> None:
        self.db.open()

    def close(self) -> None:
        self.sessions.close()
        self.db.close()

    # -- the object layer -------------------------------------------------------------
    def execute(self, uid: int, model: str, method: str, args: object, kwargs: object) -> Any:
        if not isinstance(args, list | tuple):
            raise ServerError("args must be a list", "builtins.TypeError")
        if not isinstance(kwargs, Mapping):
            kwargs = {}
        if model == "account.move" and method == "action_post":
            self._defects()

        def work(conn: Conn) -> Any:
            return models.execute(
                conn, uid, model_name=model, method=method, args=list(args), kwargs=kwargs
            )

        return self.db.run(work, write=method not in READ_ONLY)

    def _defects(self) -> None:
        """The release's deliberate faults, for rollout/rollback drills."""
        if self.config.defect == "posting-fails":
            raise ServerError(
                f"release {self.config.release}: posting is broken (defect posting-fails)",
                "builtins.TypeError",
            )
        if self.config.defect == "slow-posting":
            time.sleep(SLOW_POSTING_S)  # before the transaction: slow, but holds no lock

    # -- Odoo services (JSON-RPC /jsonrpc and XML-RPC /xmlrpc/2/*) ------------------------
    def dispatch(self, service: str, method: str, args: object) -> Any:
        if service == "common":
            return self.common(method, args)
        if service == "object":
            return self.object(method, args)
        if service == "db":
            if method == "list":
                return [self.config.database]
            if method == "server_version":
                return self.config.release
        raise ServerError(f"unknown service or method {service}.{method}", "builtins.KeyError")

    def common(self, method: str, args: object) -> Any:
        if method == "version":
            return version_info(self.config.release)
        if method in ("login", "authenticate"):
            db, login, password = _args(args, method, 3)[:3]
            uid = self.auth.login(str(db), str(login), str(password))
            return uid if uid is not None else False
        if method == "about":
            return f"See http://openerp.com (ledgerdrill reference ERP {self.config.release})"
        raise ServerError(f"unknown method common.{method}", "builtins.KeyError")

    def object(self, method: str, args: object) -> Any:
        if method == "execute_kw":
            values = _args(args, method, 5)
            db, uid, password, model, name = values[:5]
            call_args = values[5] if len(values) > 5 else []
            kwargs = values[6] if len(values) > 6 else {}
        elif method == "execute":
            values = _args(args, method, 5)
            db, uid, password, model, name = values[:5]
            call_args, kwargs = values[5:], {}
        else:
            raise ServerError(f"unknown method object.{method}", "builtins.KeyError")
        checked = self.auth.check(str(db), uid, password)
        return self.execute(checked, str(model), str(name), call_args, kwargs)

    # -- the web client's endpoints -------------------------------------------------------
    def session_authenticate(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], Session]:
        db = str(params.get("db") or self.config.database)
        login, password = str(params.get("login") or ""), str(params.get("password") or "")
        uid = self.auth.login(db, login, password)
        if uid is None:
            raise AccessDenied()
        session = self.sessions.create(uid, login, db)
        version = version_info(self.config.release)
        return {
            "uid": uid,
            "is_system": True,
            "is_admin": True,
            "db": db,
            "username": login,
            "name": login,
            "server_version": version["server_version"],
            "server_version_info": version["server_version_info"],
            "user_context": {"lang": "en_US", "tz": "UTC", "uid": uid},
        }, session

    def call_kw(self, sid: str | None, params: Mapping[str, Any]) -> Any:
        session = self.sessions.get(sid)
        return self.execute(
            session.uid,
            str(params.get("model", "")),
            str(params.get("method", "")),
            params.get("args") or [],
            params.get("kwargs") or {},
        )

    def session_info(self, sid: str | None) -> dict[str, Any]:
        session = self.sessions.get(sid)
        return {"uid": session.uid, "username": session.login, "db": session.db}

    def session_destroy(self, sid: str | None) -> None:
        """Log out: the session is gone, wherever the next request lands."""
        if sid:
            self.sessions.delete(sid)

    # -- Odoo 19's JSON-2 (json2.py) ------------------------------------------------------
    def json2_user(self, authorization: str | None, database: str | None) -> int:
        """The user a JSON-2 request acts as: its bearer API key's owner, or 401."""
        uid = self.auth.api_key(database, json2.bearer_key(authorization))
        if uid is None:
            raise json2.unauthorized()
        return uid

    def json2_call(self, uid: int, call: json2.Call) -> Any:
        value = self.execute(uid, call.model, call.method, call.args, call.kwargs)
        return json2.result(call.method, value)

    def db_ok(self) -> bool:
        return self.db.ping()

    def is_read(self, method: str) -> bool:
        return method in READ_ONLY
