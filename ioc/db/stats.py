"""What the tables hold, for ``ioc db info``: exact counts where counting is cheap, estimates beyond, time ranges.

A planner estimate is ``-1``/0 until autovacuum first analyses a table, so right after a first load it says
"nothing stored"; small tables are therefore counted exactly. Past ``EXACT_COUNT_BELOW`` estimated rows (a year of
city readings is billions) the estimate is shown, and marked so. Time ranges come from the ``time`` indexes
(min/max read one index entry each end, per chunk on TimescaleDB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

# Below this estimate count(*) takes well under a second; above, the estimate is close enough to be useful.
EXACT_COUNT_BELOW = 2_000_000
# A count or range query that takes longer than this (cold cache, huge table with a stale estimate) gives way to
# the estimate: `ioc db info` must answer promptly.
QUERY_TIMEOUT = "5s"

TABLES = ("devices", "device_state", "lighting_readings", "cabinet_readings", "water_readings", "traffic_readings",
          "environment_readings", "device_events", "device_status_changes", "rejected_messages")
TIME_COLUMN = {"device_events": "time", "device_status_changes": "time", "rejected_messages": "received_at"}


@dataclass
class TableStats:
    name: str
    rows: int
    exact: bool
    first: datetime | None = None
    last: datetime | None = None
    by_provenance: dict[str, int] = field(default_factory=dict)


def _time_column(table: str) -> str | None:
    return "time" if table.endswith("_readings") else TIME_COLUMN.get(table)


def _bounded(conn: psycopg.Connection[Any], query: sql.Composed) -> list[tuple[Any, ...]] | None:
    """Run a read-only query under QUERY_TIMEOUT; None when it ran out of time."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(QUERY_TIMEOUT)))
            rows: list[tuple[Any, ...]] = conn.execute(query).fetchall()
            return rows
    except psycopg.errors.QueryCanceled:
        return None


def table_stats(conn: psycopg.Connection[Any], timescaledb: bool) -> list[TableStats]:
    out: list[TableStats] = []
    for table in TABLES:
        if conn.execute("SELECT to_regclass(%s)", (f"ioc.{table}",)).fetchone() == (None,):
            continue
        ident = sql.Identifier("ioc", table)
        # A hypertable's parent holds no rows itself: TimescaleDB's own estimate sums its chunks.
        estimate_sql = ("SELECT approximate_row_count(%s::regclass)" if timescaledb else
                        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass")
        row = conn.execute(estimate_sql, (f"ioc.{table}",)).fetchone()
        stats = TableStats(table, max(0, int(row[0])) if row and row[0] is not None else 0, exact=False)
        has_provenance = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'ioc' AND table_name = %s"
            " AND column_name = 'provenance'", (table,)).fetchone() is not None
        if stats.rows < EXACT_COUNT_BELOW:
            query = (sql.SQL("SELECT provenance, count(*) FROM {} GROUP BY 1 ORDER BY 1") if has_provenance else
                     sql.SQL("SELECT NULL, count(*) FROM {}")).format(ident)
            counted = _bounded(conn, query)
            if counted is not None:
                stats.rows, stats.exact = sum(int(n) for _, n in counted), True
                if has_provenance:
                    stats.by_provenance = {str(p): int(n) for p, n in counted}
        column = _time_column(table)
        if column and (stats.rows or not stats.exact):  # an estimate of 0 may be stale
            col = sql.Identifier(column)
            span = _bounded(conn, sql.SQL("SELECT min({}), max({}) FROM {}").format(col, col, ident))
            if span:
                stats.first, stats.last = span[0]
        out.append(stats)
    return out
