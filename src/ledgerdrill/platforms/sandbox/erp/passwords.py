"""Password hashing for ``res_users`` (PBKDF2-SHA512, passlib-like format as Odoo stores)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 100_000  # ~50 ms per check; checks are cached in-process by the auth layer


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw, altchars=b"./").decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"./")


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$pbkdf2-sha512${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2-sha512":
            return False
        actual = hashlib.pbkdf2_hmac("sha512", password.encode(), _unb64(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))
