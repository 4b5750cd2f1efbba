"""Connections and database-level helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

# A server that does not answer within this is treated as down; ingest backs off and retries.
CONNECT_TIMEOUT_S = 5


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S, application_name="ioc")


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def ensure_database(dsn: str) -> bool:
    """Create the database named in ``dsn`` when it does not exist; True if it was created."""
    name = database_name(dsn)
    with connect(with_database(dsn, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def timescaledb_offered(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """Version of TimescaleDB the server can install (and has preloaded), else None."""
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return None
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if preload is None or "timescaledb" not in str(preload[0]):
        return None
    return str(row[0])


def timescaledb_installed(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return None if row is None else str(row[0])


class LazyConnection:
    """An autocommit connection opened on first use and dropped by ``reset()`` after a transient error, so the
    next use reconnects. Autocommit: writes go in explicit ``transaction()`` blocks (BEGIN … COMMIT); an implicit
    transaction opened by a lookup would otherwise turn such a block into a savepoint that never commits."""

    def __init__(self, dsn: str, application_name: str,
                 on_connect: Callable[[psycopg.Connection[Any]], None] | None = None) -> None:
        self._dsn, self._name, self._on_connect = dsn, application_name, on_connect
        self._conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name=self._name)
            if self._on_connect is not None:
                self._on_connect(conn)
            self._conn = conn
        return self._conn

    def reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
