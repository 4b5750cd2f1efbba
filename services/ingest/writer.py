"""Write decoded messages to PostgreSQL in one transaction per batch, idempotently.

Rows go in with binary COPY straight into the target table. A unique violation means some rows are
already stored (redelivery after a crash, a replayed feed): the table is then written through a temp
staging table with ``INSERT … ON CONFLICT DO NOTHING``, which counts the duplicates, and stays on that
path for a while because duplicates come in runs.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

from ioc.db.connect import LazyConnection
from services.ingest import metrics
from services.ingest.decode import Decoded, Rejection
from services.ingest.tables import TABLES, Row

# After a duplicate, keep using the de-duplicating path this long: replays and redeliveries come in runs,
# and a failed COPY costs a round trip.
DEDUPE_HOLD_S = 10.0

TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)


def _create_staging_tables(conn: psycopg.Connection[Any]) -> None:
    """Per-connection temp tables for the de-duplicating path (temporary, so never DDL on the real schema)."""
    for spec in TABLES.values():
        conn.execute(sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE ioc.{} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(sql.Identifier(f"stage_{spec.name}"), sql.Identifier(spec.name)))


@dataclass
class WriteResult:
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejections: list[Rejection] = field(default_factory=list)


class Writer:
    """Owns one database connection. Not thread-safe: used by the ingest's database stage only."""

    def __init__(self, dsn: str, reject_keep_bytes: int = 4096) -> None:
        self._keep = reject_keep_bytes
        self._db = LazyConnection(dsn, "ioc-ingest", on_connect=_create_staging_tables)
        self.reset = self.close = self._db.reset  # after a transient error the next write reconnects
        self._dedupe_until: dict[str, float] = {}

    def write(self, messages: Sequence[Decoded], now: datetime) -> WriteResult:
        """Commit everything the messages produced, or raise. A permanent error on some message is isolated
        by bisection and stored as a ``storage_error`` rejection; transient errors propagate for retry."""
        try:
            return self._write_once(messages, now)
        except TRANSIENT:
            raise
        except (psycopg.Error, ValueError, OverflowError) as exc:
            metrics.DB_ERRORS.labels("permanent").inc()
            if len(messages) == 1:
                bad = messages[0]
                rejection = Rejection(bad.topic, bad.device_id, "storage_error",
                                      f"the database refused this message: {exc}".strip()[:1000], bad.payload)
                # keep what the decoder already refused in it (bad readings of a batch) next to the new refusal
                poisoned = Decoded(bad.topic, bad.payload, bad.device_id, rejections=[*bad.rejections, rejection])
                return self._write_once([poisoned], now)
            half = len(messages) // 2
            first = self.write(messages[:half], now)
            second = self.write(messages[half:], now)
            for table, n in second.rows.items():
                first.rows[table] += n
            for table, n in second.duplicates.items():
                first.duplicates[table] += n
            first.rejections.extend(second.rejections)
            return first

    def _write_once(self, messages: Sequence[Decoded], now: datetime) -> WriteResult:
        result = WriteResult()
        rows: dict[str, list[Row]] = defaultdict(list)
        newest: dict[str, datetime] = {}
        latest: dict[str, Latest] = {}
        statuses: list[tuple[str, str, bool, bool]] = []
        for m in messages:
            if m.rows and m.table:
                rows[m.table].extend(m.rows)
                if m.device_id and m.newest and (m.device_id not in newest or m.newest > newest[m.device_id]):
                    newest[m.device_id] = m.newest
                if m.device_id and m.table in LATEST_TABLES:
                    _keep_latest(latest, m.device_id, m.table, m.rows)
            if m.status and m.device_id:
                statuses.append((m.device_id, m.status, m.is_gateway, m.status_retained))
            result.rejections.extend(m.rejections)
        conn = self._db.get()
        with conn.transaction(), conn.cursor() as cur:
            for table, table_rows in rows.items():
                inserted = self._copy_rows(cur, table, table_rows)
                result.rows[table] = inserted
                result.duplicates[table] = len(table_rows) - inserted
            if newest:
                self._touch_devices(cur, newest, now, latest)
            for device_id, status, is_gateway, retained in statuses:
                self._set_status(cur, device_id, status, is_gateway, retained, now)
            if result.rejections:
                self._store_rejections(cur, result.rejections, now)
        return result

    def _copy_rows(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row]) -> int:
        spec = TABLES[table]
        if self._dedupe_until.get(table, 0.0) < time.monotonic():
            try:
                with cur.connection.transaction():
                    self._copy(cur, sql.Identifier("ioc", table), spec.columns, spec.types, rows)
                return len(rows)
            except psycopg.errors.UniqueViolation:
                self._dedupe_until[table] = time.monotonic() + DEDUPE_HOLD_S
        stage = sql.Identifier(f"stage_{table}")
        self._copy(cur, stage, spec.columns, spec.types, rows)
        cols = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
        cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            sql.Identifier("ioc", table), cols, cols, stage))
        return cur.rowcount  # the staging rows go at COMMIT (ON COMMIT DELETE ROWS)

    @staticmethod
    def _copy(cur: psycopg.Cursor[Any], target: sql.Composable, columns: tuple[str, ...], types: tuple[str, ...],
              rows: list[Row]) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            target, sql.SQL(", ").join(map(sql.Identifier, columns)))
        with cur.copy(statement) as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)

    @staticmethod
    def _touch_devices(cur: psycopg.Cursor[Any], newest: dict[str, datetime], now: datetime,
                       latest: dict[str, Latest]) -> None:
        # Sorted ids: N workers upserting overlapping devices lock rows in the same order, so never deadlock.
        # The latest-value row (last_reading) changes only for a strictly newer reading time: a late, older reading
        # (a back-fill, a redelivery) never replaces it, whatever order messages arrive in.
        ids = sorted(newest)
        at = [latest[i].time if i in latest else None for i in ids]
        values = [_latest_json(latest[i]) if i in latest else None for i in ids]
        cur.execute(
            """INSERT INTO ioc.device_state AS s (device_id, last_seen, last_reading_time, last_reading_at,
                                                  last_reading)
               SELECT u.device_id, %s, u.newest, u.at, u.reading::jsonb
               FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])
                    AS u(device_id, newest, at, reading)
               JOIN ioc.devices d USING (device_id)
               ORDER BY u.device_id
               ON CONFLICT (device_id) DO UPDATE
               SET last_seen = greatest(s.last_seen, EXCLUDED.last_seen),
                   last_reading_time = greatest(s.last_reading_time, EXCLUDED.last_reading_time),
                   last_reading_at = greatest(s.last_reading_at, EXCLUDED.last_reading_at),
                   last_reading = CASE WHEN EXCLUDED.last_reading_at > s.last_reading_at OR s.last_reading_at IS NULL
                                       THEN coalesce(EXCLUDED.last_reading, s.last_reading)
                                       ELSE s.last_reading END""",
            (now, ids, [newest[i] for i in ids], at, values),
        )

    @staticmethod
    def _set_status(cur: psycopg.Cursor[Any], device_id: str, status: str, is_gateway: bool, retained: bool,
                    now: datetime) -> None:
        """Record a change (not a repeat) for the device, and for a gateway also for the devices behind it, whose
        reachability it carries. A retained status replayed on (re)subscribe is a snapshot that may predate what
        is known since (a gateway's will): it only fills in a status still 'unknown'."""
        cur.execute(
            """WITH targets AS (
                   SELECT device_id, CASE WHEN device_id = %(dev)s THEN 'device' ELSE 'gateway:' || %(dev)s END AS cause
                   FROM ioc.devices WHERE device_id = %(dev)s OR (%(gw)s AND gateway_id = %(dev)s)),
               changed AS (
                   INSERT INTO ioc.device_state AS s (device_id, status, status_changed_at, last_seen)
                   SELECT device_id, %(status)s, %(now)s, %(now)s FROM targets
                   ON CONFLICT (device_id) DO UPDATE SET status = EXCLUDED.status,
                       status_changed_at = EXCLUDED.status_changed_at
                   WHERE s.status IS DISTINCT FROM EXCLUDED.status AND (NOT %(retained)s OR s.status = 'unknown')
                   RETURNING s.device_id)
               INSERT INTO ioc.device_status_changes (time, device_id, status, cause)
               SELECT %(now)s, t.device_id, %(status)s, t.cause FROM changed JOIN targets t USING (device_id)""",
            {"dev": device_id, "gw": is_gateway, "status": status, "retained": retained, "now": now},
        )

    def _store_rejections(self, cur: psycopg.Cursor[Any], rejections: list[Rejection], now: datetime) -> None:
        with cur.copy("COPY ioc.rejected_messages (received_at, topic, device_id, reason, detail, payload,"
                      " payload_size) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "text", "text", "text", "text", "bytea", "int4"])
            for r in rejections:
                copy.write_row((now, _text(r.topic), r.device_id and _text(r.device_id), r.reason, _text(r.detail),
                                r.payload[: self._keep], len(r.payload)))


# Reading tables whose newest row per device is kept in ioc.device_state.last_reading (events are not readings).
LATEST_TABLES = frozenset(("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings",
                           "environment_readings"))
_SKIP_COLUMNS = frozenset(("time", "device_id", "ingest_time"))


@dataclass(slots=True)
class Latest:
    time: datetime
    table: str
    rows: list[Row]  # the rows at that time: one, or one per lane for traffic


def _keep_latest(latest: dict[str, Latest], device_id: str, table: str, rows: list[Row]) -> None:
    for row in rows:
        t = row[0]  # every reading table's rows start with the reading time
        held = latest.get(device_id)
        if held is None or t > held.time:
            latest[device_id] = Latest(t, table, [row])
        elif t == held.time and table == "traffic_readings" and all(r[2] != row[2] for r in held.rows):
            held.rows.append(row)


def _latest_json(latest: Latest) -> str:
    """The newest reading as a JSON object of the table's columns (nulls left out); traffic as
    ``{"lanes": [...]}``."""
    columns = TABLES[latest.table].columns
    objects = [{c: v for c, v in zip(columns, row, strict=True) if c not in _SKIP_COLUMNS and v is not None}
               for row in latest.rows]
    value: dict[str, Any] = {"lanes": objects} if latest.table == "traffic_readings" else objects[0]
    return orjson.dumps(value).decode()


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a rejection must never fail to store because of what it reports."""
    return value.replace("\x00", "\\0")
