"""SQL for the device registry: pages of devices with their state, one device, admin writes."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ioc.registry import Device, upsert_devices
from services.api.queries.filters import STATE_SQL, DeviceFilter

_COLUMNS = sql.SQL(
    """d.device_id, d.family, d.kind, d.city, d.ward, d.site, d.lat, d.lon, d.report_interval_s, d.gateway_id,
       d.parent_id, d.metadata, d.created_at, d.updated_at, d.decommissioned_at,
       s.status, s.status_changed_at, s.last_seen, s.last_reading_time, s.last_reading_at, {state} AS state"""
).format(state=STATE_SQL)


def page(conn: psycopg.Connection[Any], flt: DeviceFilter, after: str | None, limit: int,
         with_reading: bool = False) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` devices after ``after`` in id order (the extra row tells there is a next page)."""
    params: dict[str, Any] = {"limit": limit + 1, "after": after}
    where = flt.where(params)
    reading = sql.SQL(", s.last_reading") if with_reading else sql.SQL("")
    query = sql.SQL(
        """SELECT {cols}{reading} FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
           WHERE {where} AND (%(after)s::text IS NULL OR d.device_id > %(after)s::text)
           ORDER BY d.device_id LIMIT %(limit)s"""
    ).format(cols=_COLUMNS, reading=reading, where=where)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def one(conn: psycopg.Connection[Any], device_id: str) -> dict[str, Any] | None:
    query = sql.SQL(
        """SELECT {cols}, s.last_reading FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
           WHERE d.device_id = %s"""
    ).format(cols=_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (device_id,)).fetchone()


def exists(conn: psycopg.Connection[Any], device_id: str) -> bool:
    return conn.execute("SELECT 1 FROM ioc.devices WHERE device_id = %s", (device_id,)).fetchone() is not None


def insert(conn: psycopg.Connection[Any], device: Device) -> bool:
    """Register a new device; False when the id is taken."""
    row = device.model_dump()
    with conn.transaction():
        cur = conn.execute(
            """INSERT INTO ioc.devices (device_id, family, kind, city, ward, site, lat, lon, report_interval_s,
                                        gateway_id, parent_id, metadata)
               VALUES (%(device_id)s, %(family)s, %(kind)s, %(city)s, %(ward)s, %(site)s, %(lat)s, %(lon)s,
                       %(report_interval_s)s, %(gateway_id)s, %(parent_id)s, %(metadata)s::jsonb)
               ON CONFLICT (device_id) DO NOTHING""",
            {**row, "metadata": json.dumps(row["metadata"], ensure_ascii=False)},
        )
        if cur.rowcount == 0:
            return False
        conn.execute("INSERT INTO ioc.device_state (device_id) VALUES (%s) ON CONFLICT DO NOTHING",
                     (device.device_id,))
    return True


def update(conn: psycopg.Connection[Any], device: Device) -> None:
    """Same path as ``ioc devices import``: insert or update by id."""
    upsert_devices(conn, [device])


def decommission(conn: psycopg.Connection[Any], device_id: str) -> bool:
    """Mark a device decommissioned (its history stays); False when it does not exist."""
    cur = conn.execute(
        "UPDATE ioc.devices SET decommissioned_at = coalesce(decommissioned_at, now()), updated_at = now()"
        " WHERE device_id = %s", (device_id,))
    return cur.rowcount > 0
