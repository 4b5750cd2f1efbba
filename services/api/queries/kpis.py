"""SQL for status and KPI summaries. Current figures read the latest-value rows (ioc.device_state); daily and
hourly figures read the raw tables over bounded windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from services.api.queries.filters import STATE_SQL, DeviceFilter

GROUPS = {"city": "d.city", "ward": "coalesce(d.ward, '')", "family": "d.family", "kind": "d.kind",
          "site": "coalesce(d.site, '')"}


def status_counts(conn: psycopg.Connection[Any], flt: DeviceFilter, group_by: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    query = sql.SQL(
        """SELECT {g} AS "group", count(*) AS total,
                  count(*) FILTER (WHERE st = 'online') AS online,
                  count(*) FILTER (WHERE st = 'offline') AS offline,
                  count(*) FILTER (WHERE st = 'silent') AS silent,
                  count(*) FILTER (WHERE st = 'decommissioned') AS decommissioned
           FROM (SELECT d.*, {state} AS st FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
                 WHERE {where}) d
           GROUP BY 1 ORDER BY 1"""
    ).format(g=sql.SQL(GROUPS[group_by]), state=STATE_SQL, where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def lighting_now(conn: psycopg.Connection[Any], flt: DeviceFilter, night: bool) -> dict[str, Any]:
    """Lamps lit / expected (all working lamps at night, none by day), faulty lamps, smart share."""
    params: dict[str, Any] = {"night": night}
    query = sql.SQL(
        """SELECT count(*) AS lamps,
                  count(*) FILTER (WHERE s.last_reading->>'power_state' IN ('on', 'low') AND {state} = 'online') AS lit,
                  count(*) FILTER (WHERE s.last_reading->>'lamp_status' IS NOT NULL
                                     AND s.last_reading->>'lamp_status' <> 'ok') AS faulty,
                  count(*) FILTER (WHERE d.metadata->>'lamp_type' IN ('led-smart', 'led', 'solar')) AS smart,
                  count(*) FILTER (WHERE {state} <> 'online') AS not_reporting
           FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
           WHERE {where} AND d.kind = 'streetlight' AND d.decommissioned_at IS NULL"""
    ).format(state=STATE_SQL, where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    assert row is not None
    row["expected_lit"] = row["lamps"] - row["faulty"] if night else 0
    return row


def lighting_energy(conn: psycopg.Connection[Any], flt: DeviceFilter, start: datetime, end: datetime,
                    tz: str) -> list[dict[str, Any]]:
    """kWh per local day: cabinets' meters (they carry the lamps behind them), max − min of the cumulative
    register within the day, summed over cabinets."""
    params: dict[str, Any] = {"start": start, "end": end, "tz": tz}
    query = sql.SQL(
        """SELECT day, sum(kwh) AS kwh, count(*) AS cabinets FROM (
               SELECT (r.time AT TIME ZONE %(tz)s)::date AS day, r.device_id,
                      max(r.energy_kwh) - min(r.energy_kwh) AS kwh
               FROM ioc.cabinet_readings r
               WHERE r.time >= %(start)s AND r.time < %(end)s
                 AND r.device_id IN (SELECT d.device_id FROM ioc.devices d WHERE {where} AND d.kind = 'cabinet')
               GROUP BY 1, 2) per_cabinet
           GROUP BY day ORDER BY day"""
    ).format(where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()
