"""Web sessions in Redis (``session:<sid>``, JSON, with a TTL).

Losing Redis loses every session, as losing Odoo's session store does: the client gets
``SessionExpiredException`` and must log in again. Stateless ``execute_kw`` does not
touch Redis at all.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import redis

from ledgerdrill.platforms.sandbox.erp.errors import ServerError, SessionExpired

SESSION_TTL_S = 7 * 24 * 3600  # Odoo's session lifetime
REDIS_TIMEOUT_S = 0.5  # a dead Redis costs a request half a second, not a hang


@dataclass(frozen=True)
class Session:
    sid: str
    uid: int
    login: str
    db: str


class SessionStore:
    def __init__(self, redis_url: str | None) -> None:
        self.client: redis.Redis | None = None
        if redis_url:
            self.client = redis.Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                health_check_interval=5,
            )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def create(self, uid: int, login: str, db: str) -> Session:
        if self.client is None:
            raise ServerError("no session store configured", "builtins.RuntimeError")
        session = Session(secrets.token_urlsafe(32), uid, login, db)
        payload = json.dumps({"uid": uid, "login": login, "db": db})
        try:
            self.client.set(f"session:{session.sid}", payload, ex=SESSION_TTL_S)
        except redis.RedisError as exc:
            raise ServerError(
                f"session store unavailable: {type(exc).__name__}", "redis.exceptions.RedisError"
            ) from None
        return session

    def get(self, sid: str | None) -> Session:
        """The session for cookie ``sid``; ``SessionExpired`` when it is unknown, expired,
        or Redis cannot be reached (the session cannot be proven)."""
        if not sid or self.client is None:
            raise SessionExpired()
        try:
            raw = self.client.get(f"session:{sid}")
        except redis.RedisError:
            raise SessionExpired("Session expired (session store unavailable)") from None
        if raw is None:
            raise SessionExpired()
        try:
            data = json.loads(raw)
            return Session(sid, int(data["uid"]), str(data["login"]), str(data["db"]))
        except (ValueError, KeyError, TypeError):
            raise SessionExpired() from None

    def delete(self, sid: str) -> None:
        if self.client is None:
            return
        try:
            self.client.delete(f"session:{sid}")
        except redis.RedisError as exc:  # a logout that did not happen is said
            raise ServerError(
                f"session store unavailable: {type(exc).__name__}", "redis.exceptions.RedisError"
            ) from None

    def ping(self) -> bool:
        if self.client is None:
            return False
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
