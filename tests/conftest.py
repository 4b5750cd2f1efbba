"""Fixtures for tests against the real servers: Mosquitto started from the project's config, PostgreSQL
(the local server, or a throw-away cluster for fault tests), on both storage paths."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from ioc.db.migrate import migrate
from testkit.broker import MosquittoBroker
from testkit.databases import create_database, drop_database, timescaledb_available

PG_SERVER = os.environ.get("IOC_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
STORAGE_PATHS = ("plain", "timescaledb")


def _server_offers_timescaledb() -> bool:
    try:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
            preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        return timescaledb_available(PG_SERVER) and preload is not None and "timescaledb" in str(preload[0])
    except psycopg.OperationalError as exc:
        raise pytest.UsageError(
            f"PostgreSQL is not reachable at {PG_SERVER} ({exc}); start it with `make services` "
            "or point IOC_TEST_PG_SERVER at a server"
        ) from exc


TIMESCALEDB = _server_offers_timescaledb()


def pytest_report_header() -> str:
    if TIMESCALEDB:
        return f"storage paths: plain PostgreSQL and TimescaleDB (server {PG_SERVER})"
    return (f"storage paths: plain PostgreSQL only — the TimescaleDB tests SKIP: {PG_SERVER} does not offer the "
            "timescaledb extension (preloaded)")


def require_storage(path: str) -> None:
    if path == "timescaledb" and not TIMESCALEDB:
        pytest.skip("TimescaleDB extension not available on the test server")


@pytest.fixture(params=STORAGE_PATHS)
def storage(request: pytest.FixtureRequest) -> str:
    path: str = request.param
    require_storage(path)
    return path


def migrated_database(path: str) -> Iterator[str]:
    dsn = create_database(PG_SERVER)
    try:
        report = migrate(dsn, "on" if path == "timescaledb" else "off")
        assert report.storage_path == path
        yield dsn
    finally:
        drop_database(PG_SERVER, dsn)


@pytest.fixture
def database(storage: str) -> Iterator[str]:
    """A fresh, migrated database on the storage path under test."""
    yield from migrated_database(storage)


@pytest.fixture
def plain_database() -> Iterator[str]:
    yield from migrated_database("plain")


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as b:
        yield b
