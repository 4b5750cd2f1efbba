"""Retention for the bookkeeping tables ingest fills: ``rejected_messages``, ``device_events``,
``device_status_changes``.

On TimescaleDB, ``device_events`` and ``device_status_changes`` are hypertables with retention policies
(migration 0006, 400 days); a table that has a TimescaleDB retention job is left to it. Everything else is
cleaned here: a scheduled ``DELETE`` of rows older than the configured age, in short slices so ingest and
readers are never blocked. With several workers, one of them (an advisory lock) does it at a time.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import psycopg
from psycopg import sql

from ioc.db.connect import connect
from services.ingest import metrics

log = logging.getLogger("ioc.ingest.retention")

# table -> the column its age is measured by
AGE_COLUMNS = {"rejected_messages": "last_received_at", "device_events": "time", "device_status_changes": "time"}
# Rows per DELETE: each slice is a short transaction (~0.1 s), so nothing waits on the clean-up.
DELETE_SLICE = 10_000
# The first clean-up waits this long after start: a worker in a restart loop should not spend its time here.
FIRST_RUN_AFTER_S = 60.0
# Arbitrary constant (next to migrate's 0x10C_0001): one worker of N cleans at a time.
_LOCK_KEY = 0x10C_0006


class Retention:
    def __init__(self, dsn: str, keep: dict[str, timedelta], interval_s: float) -> None:
        unknown = keep.keys() - AGE_COLUMNS.keys()
        if unknown:
            raise ValueError(f"no retention rule for {unknown}")
        self._dsn, self.keep, self.interval_s = dsn, keep, interval_s

    def run(self, stopping: threading.Event) -> None:
        """Clean every ``interval_s`` until ``stopping``; a database error skips one round (logged)."""
        wait = min(FIRST_RUN_AFTER_S, self.interval_s)
        while not stopping.wait(wait):
            wait = self.interval_s
            try:
                deleted = self.run_once()
            except psycopg.Error as exc:
                log.warning("retention clean-up skipped (%s); next try in %.0fs",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, wait)
                continue
            if any(deleted.values()):
                log.info("retention: deleted %s", ", ".join(f"{n} from {t}" for t, n in deleted.items() if n))

    def run_once(self) -> dict[str, int]:
        """Delete what is past its age now; returns rows deleted per table (empty when another worker is at it)."""
        deleted: dict[str, int] = {}
        with connect(self._dsn, autocommit=True) as conn:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
            if not locked or not locked[0]:
                return deleted
            try:
                policed = _tables_with_timescaledb_retention(conn)
                for table, age in self.keep.items():
                    if table in policed:
                        continue
                    column = sql.Identifier(AGE_COLUMNS[table])
                    target = sql.Identifier("ioc", table)
                    # The age test is repeated outside the slice: a ctid is unique within one table only (a
                    # hypertable without a policy has many chunks), so the outer test keeps other rows safe.
                    statement = sql.SQL(
                        "DELETE FROM {t} WHERE {c} < now() - %(age)s AND ctid IN "
                        "(SELECT ctid FROM {t} WHERE {c} < now() - %(age)s LIMIT %(n)s)").format(t=target, c=column)
                    total = 0
                    while True:
                        n = conn.execute(statement, {"age": age, "n": DELETE_SLICE}).rowcount
                        total += n
                        if n < DELETE_SLICE:
                            break
                    deleted[table] = total
                    if total:
                        metrics.RETENTION_DELETED.labels(table).inc(total)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        return deleted


def _tables_with_timescaledb_retention(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None:
        return set()
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_schema = 'ioc'").fetchall()
    return {str(r[0]) for r in rows}
