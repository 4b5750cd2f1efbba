"""Per-test databases on a shared PostgreSQL server.

Each test (or benchmark run) gets its own freshly created database so runs
never see each other's tables and can be dropped wholesale afterwards.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

CONNECT_TIMEOUT_S = 10
PROTECTED_DATABASES = frozenset({"postgres", "template0", "template1"})


def _connect(server_dsn: str) -> psycopg.Connection[TupleRow]:
    """Autocommit connection: CREATE/DROP DATABASE cannot run in a transaction."""
    try:
        return psycopg.connect(server_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        raise psycopg.OperationalError(
            f"cannot connect to PostgreSQL server {server_dsn!r}: {exc}. Start the server "
            "or point IOC_TEST_PG_SERVER at a reachable one."
        ) from exc


def dsn_for_database(server_dsn: str, name: str) -> str:
    """``server_dsn`` with the database swapped, keeping URL or key=value style."""
    if server_dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(server_dsn)
        return urlunsplit(parts._replace(path="/" + quote(name, safe="")))
    return make_conninfo(server_dsn, dbname=name)


def create_database(server_dsn: str, prefix: str = "ioc_test") -> str:
    """Create a uniquely named database (``<prefix>_<12 hex>``) and return its DSN."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _connect(server_dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return dsn_for_database(server_dsn, name)


def database_name(name_or_dsn: str) -> str:
    """Accept either a bare database name or a DSN (URL or key=value)."""
    if "://" in name_or_dsn or "=" in name_or_dsn:
        dbname = conninfo_to_dict(name_or_dsn).get("dbname")
        if not isinstance(dbname, str) or not dbname:
            raise ValueError(f"DSN {name_or_dsn!r} names no database")
        return dbname
    return name_or_dsn


def drop_database(server_dsn: str, name_or_dsn: str) -> None:
    """Drop a database made by create_database, disconnecting its sessions (FORCE).

    Refuses the maintenance/template databases so a wrong argument cannot
    wipe the server's ``postgres`` database.
    """
    name = database_name(name_or_dsn)
    if name in PROTECTED_DATABASES:
        raise ValueError(f"refusing to drop protected database {name!r}")
    with _connect(server_dsn) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def timescaledb_available(server_dsn: str) -> bool:
    """Whether the server offers the timescaledb extension (pg_available_extensions).

    This only proves the extension files are installed; CREATE EXTENSION
    also needs ``shared_preload_libraries=timescaledb`` on the server.
    """
    with _connect(server_dsn) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        ).fetchone()
    return bool(row and row[0])
