"""FastAPI dependencies: settings, a pooled database connection, and role-checked API-key auth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from services.api.config import ApiSettings
from services.api.keys import Identity, Role, verify
from services.api.problems import Problem

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key from `ioc api-keys create`")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_pool(request: Request) -> ConnectionPool[psycopg.Connection[Any]]:
    pool: ConnectionPool[psycopg.Connection[Any]] = request.app.state.pool
    return pool


def get_db(pool: Annotated[ConnectionPool[psycopg.Connection[Any]], Depends(get_pool)],
           ) -> Iterator[psycopg.Connection[Any]]:
    """One pooled connection for the request (returned to the pool afterwards, rolled back if left open)."""
    with pool.connection() as conn:
        yield conn


Settings = Annotated[ApiSettings, Depends(get_settings)]
Db = Annotated[psycopg.Connection[Any], Depends(get_db)]


class KeyCache:
    """Recently verified tokens (by hash), so a burst of requests costs one lookup; bounded in size and age."""

    MAX = 10_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Identity]] = {}

    def get(self, token: str) -> Identity | None:
        with self._lock:
            hit = self._items.get(token)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token: str, identity: Identity) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._items) >= self.MAX:
                self._items.clear()
            self._items[token] = (time.monotonic() + self.ttl_s, identity)


def _token(api_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    if api_key:
        return api_key
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return None


def require_role(role: Role) -> Callable[..., Identity]:
    """A dependency that returns the caller's identity: 401 without a valid key, 403 when its role is too low."""

    def dependency(request: Request, db: Db,
                   api_key: Annotated[str | None, Security(_api_key_header)] = None,
                   bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> Identity:
        token = _token(api_key, bearer)
        unauthorized = {"WWW-Authenticate": 'Bearer realm="ioc"'}
        if token is None:
            raise Problem(401, "unauthorized", "an API key is required: send `X-API-Key: <key>` or "
                          "`Authorization: Bearer <key>` (keys come from `ioc api-keys create`)", headers=unauthorized)
        cache: KeyCache = request.app.state.key_cache
        identity = cache.get(token)
        if identity is None:
            identity = verify(db, token)
            if identity is None:
                raise Problem(401, "unauthorized", "unknown or revoked API key", headers=unauthorized)
            cache.put(token, identity)
        if not identity.allows(role):
            raise Problem(403, "forbidden", f"this needs the {role!r} role; the key {identity.name!r} has "
                          f"{identity.role!r}")
        request.state.identity = identity
        return identity

    return dependency


Viewer = Annotated[Identity, Depends(require_role("viewer"))]
Operator = Annotated[Identity, Depends(require_role("operator"))]
Admin = Annotated[Identity, Depends(require_role("admin"))]
