"""FastAPI dependencies: settings, a pooled database connection, and role-checked API-key auth."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from services.api.config import ApiSettings
from services.api.keys import Identity, Role, verify
from services.api.problems import Problem

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key from `ioc api-keys create`")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


# Plain accessors are async: FastAPI runs sync dependencies in the thread pool, a hop each per request.
async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> ConnectionPool[psycopg.Connection[Any]]:
    pool: ConnectionPool[psycopg.Connection[Any]] = request.app.state.pool
    return pool


async def get_db(pool: Annotated[ConnectionPool[psycopg.Connection[Any]], Depends(get_pool)],
                 ) -> AsyncIterator[psycopg.Connection[Any]]:
    """One pooled connection for the request, returned to the pool afterwards.

    Async with a non-blocking fast path: taking an idle connection from the pool and returning a clean one do no
    I/O, so they stay on the event loop instead of costing two thread-pool hops per request. Waiting for a
    connection, and returning one left inside a transaction (which needs a ROLLBACK), go to the thread pool."""
    try:
        conn = pool.getconn(timeout=0)
    except PoolTimeout:
        conn = await run_in_threadpool(pool.getconn)
    try:
        yield conn
    finally:
        if conn.info.transaction_status == TransactionStatus.IDLE:
            pool.putconn(conn)
        else:
            await run_in_threadpool(pool.putconn, conn)


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


def _lookup(pool: ConnectionPool[psycopg.Connection[Any]], token: str) -> Identity | None:
    with pool.connection() as conn:
        return verify(conn, token)


def require_role(role: Role) -> Callable[..., Awaitable[Identity]]:
    """A dependency that returns the caller's identity: 401 without a valid key, 403 when its role is too low."""

    async def dependency(request: Request,
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
            identity = await run_in_threadpool(_lookup, request.app.state.pool, token)
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
