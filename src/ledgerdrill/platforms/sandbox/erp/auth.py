"""Login checks, with a short in-process cache: stateless ``execute_kw`` sends the
password with every call, and a PBKDF2 check per call would dominate the latency."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from ledgerdrill.platforms.sandbox.erp.db import Database
from ledgerdrill.platforms.sandbox.erp.errors import AccessDenied
from ledgerdrill.platforms.sandbox.erp.ledger import Conn
from ledgerdrill.platforms.sandbox.erp.passwords import verify_password
from ledgerdrill.platforms.sandbox.erp.schema import API_KEY_INDEX_SIZE

CACHE_TTL_S = 60.0


class Authenticator:
    def __init__(self, db: Database, database: str) -> None:
        self.db = db
        self.database = database
        # the cache keeps keyed digests, never passwords, under a key that dies with us
        self._key = secrets.token_bytes(32)
        self._cache: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _digest(self, password: str) -> str:
        return hmac.new(self._key, password.encode(), hashlib.sha256).hexdigest()

    def login(self, db: str, login: str, password: str) -> int | None:
        """The user's id, or None when the credentials are wrong."""
        if db != self.database or not login or not password:
            return None
        key = (f"login:{login}", self._digest(password))
        cached = self._cached(key)
        if cached is not None:
            return cached

        def lookup(conn: Conn) -> tuple[int, str] | None:
            row = conn.execute(
                "SELECT id, password_hash FROM res_users WHERE login = %s AND active", (login,)
            ).fetchone()
            return None if row is None else (int(row[0]), str(row[1]))

        found = self.db.run(lookup, write=False)
        if found is None:
            return None
        # Odoo takes an API key where RPC takes a password (``_check_credentials``)
        if not verify_password(password, found[1]) and self._key_owner(password) != found[0]:
            return None
        self._store(key, found[0])
        self._store((f"uid:{found[0]}", key[1]), found[0])
        return found[0]

    def check(self, db: str, uid: object, password: object) -> int:
        """``execute_kw``'s credentials: (uid, password) or ``AccessDenied``."""
        if db != self.database or isinstance(uid, bool) or not isinstance(uid, int):
            raise AccessDenied()
        if not isinstance(password, str) or not password:
            raise AccessDenied()
        key = (f"uid:{uid}", self._digest(password))
        if self._cached(key) is not None:
            return uid

        def lookup(conn: Conn) -> str | None:
            row = conn.execute(
                "SELECT password_hash FROM res_users WHERE id = %s AND active", (uid,)
            ).fetchone()
            return None if row is None else str(row[0])

        stored = self.db.run(lookup, write=False)
        if stored is None:
            raise AccessDenied()
        if not verify_password(password, stored) and self._key_owner(password) != uid:
            raise AccessDenied()
        self._store(key, uid)
        return uid

    def api_key(self, db: str | None, key: str) -> int | None:
        """The user whose API key ``key`` is (JSON-2's bearer), or None. ``db`` is the
        ``X-Odoo-Database`` header, when sent."""
        if (db is not None and db != self.database) or not key:
            return None
        cache_key = ("apikey", self._digest(key))
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        owner = self._key_owner(key)
        if owner is not None:
            self._store(cache_key, owner)
        return owner

    def _key_owner(self, key: str) -> int | None:
        """Odoo's look-up: rows by the key's clear 8-character index, unexpired, of an
        active user; then the hash decides."""

        def lookup(conn: Conn) -> list[tuple[int, str]]:
            rows = conn.execute(
                "SELECT k.user_id, k.key FROM res_users_apikeys k"
                " JOIN res_users u ON u.id = k.user_id"
                " WHERE k.index = %s AND u.active"
                " AND (k.expiration_date IS NULL OR k.expiration_date > now())",
                (key[:API_KEY_INDEX_SIZE],),
            ).fetchall()
            return [(int(row[0]), str(row[1])) for row in rows]

        if len(key) < API_KEY_INDEX_SIZE:
            return None
        for user_id, stored in self.db.run(lookup, write=False):
            if verify_password(key, stored):
                return user_id
        return None

    def _cached(self, key: tuple[str, str]) -> int | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or hit[1] < time.monotonic():
                return None
            return hit[0]

    def _store(self, key: tuple[str, str], uid: int) -> None:
        with self._lock:
            self._cache[key] = (uid, time.monotonic() + CACHE_TTL_S)
