"""Ordered schema migrations, applied once each and recorded in ``ioc.schema_migrations``.

A migration is ``migrations/NNNN_name.sql`` (both storage paths), ``NNNN_name.plain.sql`` /
``NNNN_name.timescaledb.sql`` (one path each; a version with no variant for the active path is
recorded as skipped), or ``NNNN_name.py`` defining ``statements(timescaledb: bool) -> list[str]``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg

from ioc.db.connect import connect, ensure_database, timescaledb_installed, timescaledb_offered
from ioc.db.roles import apply_grants
from ioc.db.stats import TableStats, table_stats

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(plain|timescaledb))?\.(sql|py)$")
# Arbitrary constant: serialises concurrent `ioc db migrate` runs (N ingest workers starting at once).
_LOCK_KEY = 0x10C_0001

Path_ = Literal["plain", "timescaledb"]


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variant: str  # 'common', 'plain', 'timescaledb'
    path: Path

    def statements(self, timescaledb: bool) -> list[str]:
        if self.path.suffix == ".sql":
            return [self.path.read_text(encoding="utf-8")]
        spec = importlib.util.spec_from_file_location(f"ioc_migration_{self.version}", self.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        build: Callable[[bool], list[str]] = module.statements
        return build(timescaledb)

    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]


@dataclass
class MigrationReport:
    storage_path: Path_
    timescaledb_version: str | None
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    already: int = 0
    grants: int = 0


def discover(directory: Path = MIGRATIONS_DIR) -> dict[int, list[Migration]]:
    found: dict[int, list[Migration]] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(("_", ".")) or path.is_dir():
            continue
        match = _NAME_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name[.plain|.timescaledb].sql|.py")
        version, name, variant, _ = match.groups()
        found.setdefault(int(version), []).append(Migration(int(version), name, variant or "common", path))
    return found


def choose_path(conn: psycopg.Connection[tuple[object, ...]], mode: str) -> tuple[Path_, str | None]:
    offered = timescaledb_offered(conn)
    installed = timescaledb_installed(conn)
    if mode == "off":
        return "plain", None
    if mode == "on" and offered is None and installed is None:
        raise MigrationError(
            "IOC_TIMESCALEDB=on but this server does not offer the timescaledb extension "
            "(install it and add timescaledb to shared_preload_libraries, or set IOC_TIMESCALEDB=auto)"
        )
    if installed or offered:
        return "timescaledb", installed or offered
    return "plain", None


def migrate(dsn: str, mode: str = "auto", *, create_database: bool = True) -> MigrationReport:
    if create_database:
        ensure_database(dsn)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            return _migrate_locked(conn, mode)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _migrate_locked(conn: psycopg.Connection[tuple[object, ...]], mode: str) -> MigrationReport:
    conn.execute("CREATE SCHEMA IF NOT EXISTS ioc")
    conn.execute(
        """CREATE TABLE IF NOT EXISTS ioc.schema_migrations (
               version integer PRIMARY KEY, name text NOT NULL, variant text NOT NULL,
               storage_path text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    done = {
        int(str(v)): str(p)
        for v, p in conn.execute("SELECT version, storage_path FROM ioc.schema_migrations").fetchall()
    }
    storage_path, version = choose_path(conn, mode)
    if done and "timescaledb" not in done.values():
        # The schema was built on plain PostgreSQL: it stays there. Converting it is a deliberate operation
        # (create_hypertable(..., migrate_data => true)), not a side effect of the extension appearing.
        storage_path, version = "plain", None
    report = MigrationReport(storage_path, version)
    timescaledb = storage_path == "timescaledb"
    for number, candidates in sorted(discover().items()):
        if number in done:
            report.already += 1
            continue
        chosen = [m for m in candidates if m.variant in ("common", storage_path)]
        if len(chosen) > 1:
            raise MigrationError(f"migration {number:04d} has more than one file for the {storage_path} path")
        with conn.transaction():
            if chosen:
                migration = chosen[0]
                for statement in migration.statements(timescaledb):
                    conn.execute(statement.encode())
                report.applied.append(migration.path.name)
                name, variant, checksum = migration.name, migration.variant, migration.checksum()
            else:
                name, variant, checksum = candidates[0].name, "skipped", ""
                report.skipped.append(f"{number:04d}_{name}")
            conn.execute(
                "INSERT INTO ioc.schema_migrations (version, name, variant, storage_path, checksum)"
                " VALUES (%s, %s, %s, %s, %s)",
                (number, name, variant, storage_path, checksum),
            )
    if timescaledb and report.timescaledb_version is None:
        report.timescaledb_version = timescaledb_installed(conn)
    # Every run, not once: tables added by later migrations get their service-role grants too.
    report.grants = apply_grants(conn)
    return report


@dataclass
class DatabaseInfo:
    storage_path: str
    timescaledb_installed: str | None
    timescaledb_offered: str | None
    server_version: str
    migrations: list[tuple[int, str, str]]
    pending: list[int]
    tables: list[TableStats]


def info(dsn: str) -> DatabaseInfo:
    with connect(dsn, autocommit=True) as conn:
        server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        has_table = conn.execute("SELECT to_regclass('ioc.schema_migrations') IS NOT NULL").fetchone()
        rows: list[tuple[int, str, str]] = []
        paths: set[str] = set()
        if has_table and has_table[0]:
            for v, n, var, p in conn.execute(
                "SELECT version, name, variant, storage_path FROM ioc.schema_migrations ORDER BY version"
            ).fetchall():
                rows.append((int(str(v)), str(n), str(var)))
                paths.add(str(p))
        pending = sorted(set(discover()) - {r[0] for r in rows})
        timescale = timescaledb_installed(conn)
        tables = table_stats(conn, timescale is not None)
        return DatabaseInfo(
            storage_path=("timescaledb" if "timescaledb" in paths else "plain") if paths else "not migrated",
            timescaledb_installed=timescale,
            timescaledb_offered=timescaledb_offered(conn),
            server_version=server_version,
            migrations=rows,
            pending=pending,
            tables=tables,
        )
