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


def water_by_dma(conn: psycopg.Connection[Any], flt: DeviceFilter, start: datetime, end: datetime,
                 night_start: datetime, night_end: datetime) -> list[dict[str, Any]]:
    """Per metered area (DMA) for a day: meters' consumption (max − min of the cumulative register), the
    minimum night flow at its inlet (lowest hourly mean in the night window: the leak indicator), and pressure
    at its network points."""
    params: dict[str, Any] = {"start": start, "end": end, "ns": night_start, "ne": night_end}
    query = sql.SQL(
        """WITH dev AS (SELECT d.device_id, d.kind, coalesce(d.metadata->>'dma', d.site) AS dma,
                               d.metadata->>'role' AS role
                        FROM ioc.devices d
                        WHERE {where} AND d.family = 'water' AND d.kind IN ('meter', 'network_point')),
                meters AS (SELECT dev.dma, count(*) AS reporting, sum(m.used) AS consumption_m3 FROM (
                               SELECT r.device_id, max(r.consumption_m3) - min(r.consumption_m3) AS used
                               FROM ioc.water_readings r JOIN dev ON dev.device_id = r.device_id AND dev.kind = 'meter'
                               WHERE r.time >= %(start)s AND r.time < %(end)s GROUP BY 1) m
                           JOIN dev USING (device_id) GROUP BY 1),
                night AS (SELECT dma, min(flow) AS min_night_flow_lph FROM (
                              SELECT dev.dma, date_bin('1 hour', r.time, %(ns)s) AS h, avg(r.flow_lph) AS flow
                              FROM ioc.water_readings r JOIN dev ON dev.device_id = r.device_id
                              WHERE dev.role = 'inlet' AND r.time >= %(ns)s AND r.time < %(ne)s GROUP BY 1, 2) x
                          GROUP BY 1),
                pressure AS (SELECT dev.dma, min(r.pressure_bar) AS min_pressure_bar,
                                    avg(r.pressure_bar) AS avg_pressure_bar
                             FROM ioc.water_readings r JOIN dev ON dev.device_id = r.device_id
                             WHERE dev.kind = 'network_point' AND r.time >= %(start)s AND r.time < %(end)s
                             GROUP BY 1)
           SELECT dma, (SELECT count(*) FROM dev d2 WHERE d2.dma = a.dma AND d2.kind = 'meter') AS meters,
                  coalesce(meters.reporting, 0) AS meters_reporting, meters.consumption_m3,
                  night.min_night_flow_lph, pressure.min_pressure_bar, pressure.avg_pressure_bar
           FROM (SELECT DISTINCT dma FROM dev WHERE dma IS NOT NULL) a
           LEFT JOIN meters USING (dma) LEFT JOIN night USING (dma) LEFT JOIN pressure USING (dma)
           ORDER BY dma"""
    ).format(where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def traffic_by_intersection(conn: psycopg.Connection[Any], flt: DeviceFilter, start: datetime,
                            end: datetime) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"start": start, "end": end}
    query = sql.SQL(
        """SELECT coalesce(d.metadata->>'intersection', d.site, d.device_id) AS intersection,
                  count(DISTINCT d.device_id) AS counters, coalesce(sum(r.intensity), 0) AS vehicles,
                  avg(r.avg_speed_kmh) AS avg_speed_kmh, avg(r.occupancy) AS avg_occupancy,
                  avg(CASE WHEN r.congested THEN 1.0 ELSE 0.0 END) AS congested_share
           FROM ioc.devices d LEFT JOIN ioc.traffic_readings r
                ON r.device_id = d.device_id AND r.time >= %(start)s AND r.time < %(end)s
           WHERE {where} AND d.kind = 'counter'
           GROUP BY 1 ORDER BY 1"""
    ).format(where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def environment_hours(conn: psycopg.Connection[Any], flt: DeviceFilter, start: datetime, end: datetime,
                      origin: datetime) -> list[dict[str, Any]]:
    """Hourly means per environment station over [start, end) — AQI, PM means and river levels are built on
    them; noise as an energy mean (10·log10 of the mean of 10^(L/10))."""
    params: dict[str, Any] = {"start": start, "end": end, "origin": origin}
    query = sql.SQL(
        """SELECT r.device_id, date_bin('1 hour', r.time, %(origin)s) AS hour,
                  avg(r.pm25) AS pm25, avg(r.pm10) AS pm10, avg(r.no2) AS no2, avg(r.o3) AS o3, avg(r.co) AS co,
                  avg(r.so2) AS so2, 10 * log(avg(power(10.0::double precision, r.laeq_db / 10.0))) AS laeq_db,
                  max(r.water_level_m) AS max_water_level_m
           FROM ioc.environment_readings r
           WHERE r.time >= %(start)s AND r.time < %(end)s
             AND r.device_id IN (SELECT d.device_id FROM ioc.devices d WHERE {where} AND d.family = 'environment')
           GROUP BY 1, 2 ORDER BY 1, 2"""
    ).format(where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def environment_stations(conn: psycopg.Connection[Any], flt: DeviceFilter) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    query = sql.SQL(
        """SELECT d.device_id, d.kind, d.ward, d.site, d.metadata, s.last_reading_at, s.last_reading
           FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
           WHERE {where} AND d.family = 'environment' AND d.decommissioned_at IS NULL ORDER BY d.device_id"""
    ).format(where=flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()
