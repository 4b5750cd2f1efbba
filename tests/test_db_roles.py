"""Least privilege in the database: the service roles `ioc db migrate` grants can do their job and nothing more.

Checked with ``SET ROLE`` inside a superuser session (the privilege checks are the role's own), and once with the
real ingest logging in as a member of ``ioc_ingest``, on both storage paths.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from ioc.db.migrate import migrate
from ioc.db.roles import API, GRAFANA, INGEST, relations, unclassified
from testkit.broker import MosquittoBroker
from testkit.feeds import lamp_feed, lamps, register, topic, wait_for
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher
from tests.conftest import STORAGE_PATHS, migrated_database, require_storage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DDL = [
    "CREATE TABLE ioc.sneaky (x int)",
    "CREATE TABLE public.sneaky (x int)",
    "CREATE SCHEMA sneaky",
    "CREATE VIEW ioc.sneaky AS SELECT 1",
    "CREATE FUNCTION ioc.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER TABLE ioc.lighting_readings ADD COLUMN sneaky int",
    "ALTER TABLE ioc.devices RENAME TO sneaky",
    "CREATE INDEX sneaky ON ioc.lighting_readings (voltage_v)",
    "DROP TABLE ioc.lighting_readings",
    "DROP TABLE ioc.device_events",
    "TRUNCATE ioc.device_state",
    "DROP SCHEMA ioc CASCADE",
]
INSERT_READING = ("INSERT INTO ioc.lighting_readings (device_id, time, power_state)"
                  " VALUES ('LAMP0000', '2026-03-14T11:00:00Z', 'on')")


def _denied(conn: psycopg.Connection[Any], role: str, statement: str) -> bool:
    """Run ``statement`` as ``role`` in a transaction that is always rolled back; True if refused for lack of
    privilege (or ownership)."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            conn.execute(statement.encode())
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


@pytest.fixture(scope="module", params=STORAGE_PATHS)
def roles_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """One migrated database per storage path for the read-only checks (each runs in a rolled-back transaction)."""
    require_storage(request.param)
    for dsn in migrated_database(request.param):
        register(dsn, lamps(2))
        yield dsn


@pytest.fixture
def as_owner(roles_database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(roles_database, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("role", [INGEST, API, GRAFANA])
def test_service_roles_cannot_create_alter_or_drop_anything(as_owner: psycopg.Connection[Any], role: str) -> None:
    allowed = [statement for statement in DDL if not _denied(as_owner, role, statement)]
    assert allowed == []


def test_ingest_role_writes_what_ingest_writes_and_nothing_else(as_owner: psycopg.Connection[Any]) -> None:
    for statement in (
        "SELECT count(*) FROM ioc.devices",
        INSERT_READING,
        "INSERT INTO ioc.rejected_messages (topic, payload, payload_size, reason, detail)"
        " VALUES ('t', '', 0, 'x', 'y')",
        "UPDATE ioc.device_state SET last_seen = now() WHERE device_id = 'LAMP0000'",
        "UPDATE ioc.rejected_messages SET times_received = times_received + 1",
        "DELETE FROM ioc.rejected_messages WHERE received_at < now() - interval '30 days'",
        "DELETE FROM ioc.device_events WHERE time < now() - interval '400 days'",
        "DELETE FROM ioc.device_status_changes WHERE time < now() - interval '400 days'",
        "CREATE TEMP TABLE stage_x (LIKE ioc.lighting_readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    ):
        assert not _denied(as_owner, INGEST, statement), statement
    for statement in (
        "INSERT INTO ioc.devices (device_id, family, kind, city, report_interval_s)"
        " VALUES ('X', 'lighting', 'streetlight', 'dien-bien-phu', 60)",
        "UPDATE ioc.devices SET site = 'x'",
        "DELETE FROM ioc.lighting_readings",
        "DELETE FROM ioc.devices",
        "UPDATE ioc.lighting_readings SET voltage_v = 0",
        "DELETE FROM ioc.schema_migrations",
    ):
        assert _denied(as_owner, INGEST, statement), statement


def test_grafana_role_reads_everything_but_cannot_write(as_owner: psycopg.Connection[Any]) -> None:
    names = relations(as_owner)
    assert len(names) >= 15  # tables and the rollup views of both storage paths
    for name, _ in names:
        if name == "api_keys":  # key hashes are the API's business only
            assert _denied(as_owner, GRAFANA, "SELECT * FROM ioc.api_keys LIMIT 1")
            continue
        assert not _denied(as_owner, GRAFANA, f"SELECT * FROM ioc.{name} LIMIT 1"), name
    for name, kind in names:
        if kind not in ("r", "p"):
            continue
        for statement in (f"DELETE FROM ioc.{name}", f"INSERT INTO ioc.{name} DEFAULT VALUES"):
            assert _denied(as_owner, GRAFANA, statement), statement
    assert _denied(as_owner, GRAFANA, "UPDATE ioc.device_state SET last_seen = now()")
    assert _denied(as_owner, API, INSERT_READING)
    assert _denied(as_owner, API, "DELETE FROM ioc.devices")
    assert not _denied(as_owner, API, "UPDATE ioc.devices SET site = 'x' WHERE device_id = 'LAMP0000'")
    assert not _denied(as_owner, API, "SELECT * FROM ioc.lighting_1h LIMIT 1")


def test_grants_cover_tables_added_by_later_migrations(plain_database: str) -> None:
    """A table created after the grants (as a later migration would) is granted on the next `ioc db migrate`."""
    with psycopg.connect(plain_database, autocommit=True) as as_owner:
        _later_table_is_granted(as_owner, plain_database)


def _later_table_is_granted(as_owner: psycopg.Connection[Any], database: str) -> None:
    as_owner.execute("CREATE TABLE ioc.alert_later_notes (id bigint GENERATED ALWAYS AS IDENTITY, who text)")
    assert _denied(as_owner, API, "INSERT INTO ioc.alert_later_notes (who) VALUES ('op')")
    assert _denied(as_owner, GRAFANA, "SELECT * FROM ioc.alert_later_notes")
    migrate(database, "auto")
    assert not _denied(as_owner, API, "INSERT INTO ioc.alert_later_notes (who) VALUES ('op')")
    assert not _denied(as_owner, GRAFANA, "SELECT * FROM ioc.alert_later_notes")
    assert _denied(as_owner, GRAFANA, "INSERT INTO ioc.alert_later_notes (who) VALUES ('op')")
    assert _denied(as_owner, INGEST, "INSERT INTO ioc.alert_later_notes (who) VALUES ('op')")


def test_every_table_has_a_grant_decision(as_owner: psycopg.Connection[Any]) -> None:
    """A table no rule in ioc/db/roles.py lets a service write must be declared owner-written there."""
    tables = [name for name, kind in relations(as_owner) if kind in ("r", "p")]
    assert unclassified(tables) == []
    assert unclassified(["brand_new_table"]) == ["brand_new_table"]


@contextmanager
def _login_member_of(database: str, group: str) -> Iterator[str]:
    """A throw-away login role in ``group`` (the shared cluster's ioc_* roles stay NOLOGIN); its DSN."""
    user = f"t_{group}_{secrets.token_hex(4)}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(user), sql.Identifier(group)))
    parts = urlsplit(database)
    try:
        yield urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port or 5432}"))
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))


def test_ingest_runs_as_the_ingest_role(plain_database: str, broker: MosquittoBroker) -> None:
    """The real ingest, logged in without DDL rights, stores a stream and then its replay exactly once (the replay
    goes through the TEMP staging path). Plain PostgreSQL only: the grants are the same on both paths, which the
    SET ROLE tests above check."""
    database = plain_database
    with psycopg.connect(database, autocommit=True) as conn:  # as deploy/compose/initdb hardens the database
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(urlsplit(database).path.lstrip("/"))))
    devices = lamps(20)
    register(database, devices)
    feed = lamp_feed(devices, per_device=10)
    with _login_member_of(database, INGEST) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert _denied(conn, INGEST, "CREATE TABLE ioc.sneaky (x int)")
        with IngestProcess(dsn, broker.url) as ingest:
            ingest.wait_connected()
            bad = [(topic(devices[0].device_id), b'{"dateObserved": "yesterday"}')]
            with Publisher(broker.host, broker.port) as pub:
                pub.publish_all(feed + bad)
                pub.publish_all(feed + bad)
            assert wait_for(database, "SELECT count(*) FROM ioc.lighting_readings", 200) == 200
            # the redelivered bad message bumps its rejection row (UPDATE), not a second row
            assert wait_for(database, "SELECT sum(times_received) FROM ioc.rejected_messages", 2) == 2
            with psycopg.connect(database) as conn:
                assert conn.execute("SELECT count(*) FROM ioc.rejected_messages").fetchone() == (1,)
            key = 'ioc_ingest_duplicate_rows_total{table="lighting_readings"}'
            for _ in range(300):
                if ingest.metrics().get(key, 0) >= 200:
                    break
                time.sleep(0.1)
            assert ingest.metrics().get(key) == 200
            assert "permission denied" not in ingest.log_text()
            assert ingest.stop() == 0
