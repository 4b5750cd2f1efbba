"""API keys: issued once as a random token, stored as its SHA-256, compared in constant time.

A token is ``ioc_`` + 43 URL-safe characters (256 random bits). Such a secret cannot be guessed, so a fast
hash is enough (no salt or slow KDF needed); the database never holds the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # each role may do what the ones before it may
TOKEN_PREFIX = "ioc_"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the key's id, name and role."""

    key_id: int
    name: str
    role: Role

    def allows(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_key(conn: psycopg.Connection[Any], name: str, role: Role) -> tuple[int, str]:
    """A new key; returns (id, token). The token is not stored and cannot be shown again."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO ioc.api_keys (name, role, key_hash, prefix) VALUES (%s, %s, %s, %s) RETURNING id",
        (name, role, hash_token(token), token[:10]),
    ).fetchone()
    assert row is not None
    conn.commit()
    return int(row[0]), token


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyInfo]:
    rows = conn.execute(
        "SELECT id, name, role, prefix, created_at, revoked_at FROM ioc.api_keys ORDER BY id"
    ).fetchall()
    return [KeyInfo(*r) for r in rows]


def revoke_key(conn: psycopg.Connection[Any], key: str) -> int:
    """Revoke by id or by name; returns how many keys were revoked."""
    if key.isdigit():
        cur = conn.execute("UPDATE ioc.api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                           (int(key),))
    else:
        cur = conn.execute("UPDATE ioc.api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
                           (key,))
    conn.commit()
    return cur.rowcount


def verify(conn: psycopg.Connection[Any], token: str) -> Identity | None:
    """The identity of an active key, or None. The lookup is by hash (an index probe, so its timing says
    nothing about the token); the stored hash is then compared in constant time all the same."""
    digest = hash_token(token)
    row = conn.execute(
        "SELECT id, name, role, key_hash FROM ioc.api_keys WHERE key_hash = %s AND revoked_at IS NULL", (digest,)
    ).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[3]), digest):
        return None
    return Identity(int(row[0]), str(row[1]), row[2])
