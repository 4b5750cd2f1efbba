"""Database errors classified at the edge (services/ingest/dberrors.py), each produced on a real server, and the
writer's behaviour under the faults that used to turn valid readings into acknowledged rejections or kill the
database stage: a read-only database, a missing table or column, a revoked privilege, a statement or lock timeout.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from ioc.db.connect import database_name
from services.ingest.dberrors import DatabaseUnavailable, Outcome, classify
from services.ingest.decode import DeviceInfo, decode
from services.ingest.writer import IDEMPOTENCY_KEYS, Writer
from testkit.feeds import count, lamp_reading, lamps, register, topic
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
DEVICES = {d.device_id: DeviceInfo(d.kind, d.family, d.city) for d in lamps(5)}


def _raise(state: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'produced' USING ERRCODE = '{state}'; END $$"


# (expected outcome, expected error label, how to produce it on a real server as the table's owner)
PRODUCED: list[tuple[Outcome, str, str]] = [
    (Outcome.DATA, "data_exception", "SELECT 1 / 0"),
    (Outcome.DATA, "data_exception", "SELECT 'x'::int"),
    (Outcome.DATA, "data_exception", """SELECT '{"a": "\\u0000"}'::jsonb"""),
    (Outcome.DATA, "integrity_constraint_violation",
     "INSERT INTO ioc.device_events (time, device_id, event_type, severity) VALUES (now(), 'd', 'e', 'bogus')"),
    (Outcome.DATA, "integrity_constraint_violation",
     "INSERT INTO ioc.device_events (time, device_id, event_type, severity) VALUES (now(), 'd', NULL, 'info')"),
    (Outcome.UNAVAILABLE, "undefined_table", "SELECT * FROM ioc.no_such_table"),
    (Outcome.UNAVAILABLE, "undefined_column", "SELECT no_such_column FROM ioc.devices"),
    (Outcome.UNAVAILABLE, "query_canceled", "SET statement_timeout = '20ms'; SELECT pg_sleep(1)"),
    (Outcome.UNAVAILABLE, "read_only_sql_transaction",
     "SET default_transaction_read_only = on; INSERT INTO ioc.device_status_changes VALUES (now(), 'd', 'online')"),
    # The rest cannot be provoked cheaply and deterministically (a full disk, a real deadlock); the server raises
    # them with their SQLSTATE all the same.
    (Outcome.UNAVAILABLE, "disk_full", _raise("53100")),
    (Outcome.UNAVAILABLE, "insufficient_resources", _raise("53200")),
    (Outcome.UNAVAILABLE, "program_limit_exceeded", _raise("54000")),
    (Outcome.UNAVAILABLE, "deadlock_detected", _raise("40P01")),
    (Outcome.UNAVAILABLE, "serialization_failure", _raise("40001")),
    (Outcome.UNAVAILABLE, "admin_shutdown", _raise("57P01")),
    (Outcome.UNAVAILABLE, "connection_exception", _raise("08006")),
    (Outcome.UNAVAILABLE, "insufficient_privilege", _raise("42501")),
    (Outcome.UNAVAILABLE, "lock_not_available", _raise("55P03")),
    (Outcome.UNAVAILABLE, "sqlstate_class_xx", _raise("XX000")),
]


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    yield from migrated_database("plain")


@pytest.mark.parametrize(("outcome", "error", "statement"), PRODUCED,
                         ids=[f"{p[1]}-{i}" for i, p in enumerate(PRODUCED)])
def test_each_error_class_produced_on_a_real_server_is_classified(
        shared_database: str, outcome: Outcome, error: str, statement: str) -> None:
    with psycopg.connect(shared_database, autocommit=True) as conn, pytest.raises(psycopg.Error) as caught:
        for part in [statement] if statement.startswith("DO") else statement.split("; "):
            conn.execute(part.encode())
    kind = classify(caught.value, IDEMPOTENCY_KEYS)
    assert kind is not None and (kind.outcome, kind.error) == (outcome, error), (caught.value.sqlstate, kind)


def test_connection_and_privilege_and_key_errors_on_a_real_server(plain_database: str) -> None:
    # a terminated backend: admin_shutdown or a bare lost connection, both unavailable
    with psycopg.connect(plain_database, autocommit=True) as victim, psycopg.connect(plain_database) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError) as lost:
            victim.execute("SELECT 1")
    kind = classify(lost.value)
    assert kind is not None and kind.outcome is Outcome.UNAVAILABLE

    # a unique violation on a reading table's key means "already stored": retried, never a rejection
    with psycopg.connect(plain_database, autocommit=True) as conn:
        register(plain_database, lamps(1))
        insert = "INSERT INTO ioc.lighting_readings (time, device_id) VALUES ('2026-03-14T00:00:00Z', 'LAMP0000')"
        conn.execute(insert)
        with pytest.raises(psycopg.errors.UniqueViolation) as dup:
            conn.execute(insert)
        assert classify(dup.value, IDEMPOTENCY_KEYS) == classify(dup.value, ("lighting_readings_pkey",))
        kind = classify(dup.value, IDEMPOTENCY_KEYS)
        assert kind is not None and (kind.outcome, kind.error) == (Outcome.UNAVAILABLE, "duplicate_key")
        other = classify(dup.value)  # any other unique violation is a message's data
        assert other is not None and other.outcome is Outcome.DATA

    # client-side: a value psycopg cannot encode; and a bug is no database error at all
    assert classify(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates")) is not None
    assert classify(TypeError("a bug")) is None
    assert classify(psycopg.ProgrammingError("the query has 1 placeholder but 2 parameters were passed")) is None


# --- the writer under faults ----------------------------------------------------------------------------------


def _messages(minute: int, n: int = 5) -> list:  # type: ignore[type-arg]
    return [decode(topic(d), json.dumps(lamp_reading(i, minute)).encode(), DEVICES, NOW)
            for i, d in enumerate(sorted(DEVICES)[:n])]


def _write_until(writer: Writer, messages: list, attempts: int = 5) -> list[str]:  # type: ignore[type-arg]
    """Write like the database stage does: on DatabaseUnavailable reset and try again. Returns the errors seen."""
    errors = []
    for _ in range(attempts):
        try:
            writer.write(messages, NOW)
            return errors
        except DatabaseUnavailable as exc:
            errors.append(exc.error)
            writer.reset()
    raise AssertionError(f"still failing after {attempts} attempts: {errors}")


def _kick(dsn: str, application_name: str = "ioc-ingest") -> None:
    """Terminate the writer's backend, so that it reconnects and picks up database-level settings."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND application_name = %s", (database_name(dsn), application_name))


@pytest.fixture
def writer(database: str) -> Iterator[Writer]:
    register(database, lamps(5))
    w = Writer(database)
    yield w
    w.close()


def _fault_then_heal(database: str, writer: Writer, fault: Callable[[psycopg.Connection], None],  # type: ignore[type-arg]
                     heal: Callable[[psycopg.Connection], None], expected: str) -> None:  # type: ignore[type-arg]
    assert _write_until(writer, _messages(0)) == []
    with psycopg.connect(database, autocommit=True) as admin:
        fault(admin)
        _kick(database)
        seen = []
        for _ in range(3):  # reconnects into the fault (the old bug: the stage died there) and fails again
            with pytest.raises(DatabaseUnavailable) as caught:
                writer.write(_messages(1), NOW)
            seen.append(caught.value.error)
            writer.reset()
        # the first attempt may find its connection terminated; then only the fault itself
        assert seen[0] in (expected, "admin_shutdown", "connection_lost") and seen[1:] == [expected, expected], seen
        heal(admin)
        _kick(database)
    _write_until(writer, _messages(1))
    _write_until(writer, _messages(1))  # a retried batch that was stored after all: duplicates, not errors
    assert count(database, "SELECT count(*) FROM ioc.rejected_messages") == 0
    assert count(database, "SELECT count(*) FROM ioc.lighting_readings") == 10


def _exec(statement: str) -> Callable[[psycopg.Connection], None]:  # type: ignore[type-arg]
    def run(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
        conn.execute(statement.encode())
    return run


def test_a_read_only_database_is_waited_out_not_rejected(database: str, writer: Writer) -> None:
    db = sql.Identifier(database_name(database)).as_string()
    _fault_then_heal(database, writer, _exec(f"ALTER DATABASE {db} SET default_transaction_read_only = on"),
                     _exec(f"ALTER DATABASE {db} RESET default_transaction_read_only"), "read_only_sql_transaction")


def test_a_missing_column_is_waited_out_not_rejected(database: str, writer: Writer) -> None:
    _fault_then_heal(database, writer, _exec("ALTER TABLE ioc.lighting_readings RENAME COLUMN voltage_v TO v_old"),
                     _exec("ALTER TABLE ioc.lighting_readings RENAME COLUMN v_old TO voltage_v"), "undefined_column")


def test_a_missing_table_is_waited_out_not_rejected(database: str, writer: Writer) -> None:
    _fault_then_heal(database, writer, _exec("ALTER TABLE ioc.lighting_readings RENAME TO lighting_old"),
                     _exec("ALTER TABLE ioc.lighting_old RENAME TO lighting_readings"), "undefined_table")


def test_a_revoked_privilege_is_waited_out_not_rejected(database: str) -> None:
    register(database, lamps(5))
    role = f"ioc_test_writer_{secrets.token_hex(4)}"
    ident = sql.Identifier(role).as_string()
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {ident} LOGIN".encode())
        try:
            admin.execute(f"GRANT USAGE ON SCHEMA ioc TO {ident}; GRANT ALL ON ALL TABLES IN SCHEMA ioc TO {ident}"
                          .encode())
            writer = Writer(database.replace("postgresql://postgres@", f"postgresql://{role}@", 1))
            try:
                _fault_then_heal(database, writer, _exec(f"REVOKE INSERT ON ioc.lighting_readings FROM {ident}"),
                                 _exec(f"GRANT INSERT ON ioc.lighting_readings TO {ident}"), "insufficient_privilege")
            finally:
                writer.close()
        finally:
            _kick(database)
            admin.execute(f"DROP OWNED BY {ident}".encode())
            admin.execute(f"DROP ROLE {ident}".encode())


@pytest.mark.parametrize(("setting", "expected"), [("statement_timeout", "query_canceled"),
                                                   ("lock_timeout", "lock_not_available")])
def test_a_table_locked_past_a_timeout_is_waited_out_not_rejected(database: str, writer: Writer, setting: str,
                                                                  expected: str) -> None:
    db = sql.Identifier(database_name(database)).as_string()
    holder = psycopg.connect(database)
    release = threading.Event()

    def lock(admin: psycopg.Connection) -> None:  # type: ignore[type-arg]
        admin.execute(f"ALTER DATABASE {db} SET {setting} = '200ms'".encode())
        holder.execute("LOCK TABLE ioc.lighting_readings IN ACCESS EXCLUSIVE MODE")  # held until commit

    def unlock(admin: psycopg.Connection) -> None:  # type: ignore[type-arg]
        holder.commit()
        release.set()
        admin.execute(f"ALTER DATABASE {db} RESET {setting}".encode())

    try:
        _fault_then_heal(database, writer, lock, unlock, expected)
    finally:
        holder.close()
