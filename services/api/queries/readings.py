"""SQL for latest readings: the latest-value row per device (ioc.device_state.last_reading), kept by ingest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from services.api.queries.filters import STATE_SQL, DeviceFilter


# One JSON object per device, built by PostgreSQL as text: a city's 40 000 rows stream out with no per-row work
# in Python. Plain concatenation, not json_build_object: about twice as fast, and every piece is JSON already
# (ids and enumerations match safe patterns, free text goes through to_json, last_reading is JSON).
# Keys are documented by services.api.routes.readings.LatestItem.
def _time(column: str) -> str:
    return f"""coalesce('"' || replace(({column} AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z"', 'null')"""


_HEAD = sql.SQL(
    """'{{"device_id":"', d.device_id, '","family":"', d.family, '","kind":"', d.kind,
       '","ward":', coalesce(to_json(d.ward)::text, 'null'), ',"site":', coalesce(to_json(d.site)::text, 'null'),
       ',"lat":', coalesce(d.lat::text, 'null'), ',"lon":', coalesce(d.lon::text, 'null'),
       ',"state":"', {state}, '","time":', """ + _time("s.last_reading_at")
).format(state=STATE_SQL)
_LATEST_JSON = sql.SQL("concat({head}, ',\"reading\":', coalesce(s.last_reading::text, 'null'), '}}')").format(
    head=_HEAD)
_STATUS_JSON = sql.SQL("concat({head}, '}}')").format(head=_HEAD)


def latest_query(flt: DeviceFilter, params: dict[str, Any], reading: bool = True) -> sql.Composed:
    return sql.SQL(
        "SELECT {obj} FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id) WHERE {where}"
        " ORDER BY d.device_id"
    ).format(obj=_LATEST_JSON if reading else _STATUS_JSON, where=flt.where(params))


# Rows per fetch while streaming: big enough that the per-fetch round trip is noise, small enough to start fast.
STREAM_BATCH = 5000


def stream_latest(conn: psycopg.Connection[Any], flt: DeviceFilter, reading: bool = True) -> Iterator[list[str]]:
    """Batches of JSON objects (text), read through a server-side cursor so memory stays flat at any size."""
    params: dict[str, Any] = {}
    query = latest_query(flt, params, reading)
    with conn.transaction(), conn.cursor(name="latest") as cur:
        cur.itersize = STREAM_BATCH
        cur.execute(query, params)
        while rows := cur.fetchmany(STREAM_BATCH):
            yield [r[0] for r in rows]


def latest_one(conn: psycopg.Connection[Any], device_id: str) -> str | None:
    query = sql.SQL(
        "SELECT {obj} FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id) WHERE d.device_id = %s"
    ).format(obj=_LATEST_JSON)
    row = conn.execute(query, (device_id,)).fetchone()
    return None if row is None else str(row[0])
