"""SQL for series: bucketed aggregates of one metric over one device or a set of devices.

Buckets are ``date_bin(width, time, origin)`` with the origin at local midnight of the requested zone, so any
width from a minute to a day works and a day bucket is a local day. The same statement shape reads either the
raw table or a rollup (``ioc.<family>_15m`` / ``_1h``): a rollup serves a request when the width is a multiple
of the rollup's, the range and origin fall on its bucket edges, and the metric/function pair can be rebuilt
from the rollup's columns exactly (sum of sums, min of mins, count-weighted means).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from services.api.queries.filters import DeviceFilter

FUNCTIONS = ("avg", "min", "max", "sum", "count", "last")

# table -> metric -> SQL expression over the raw table (r)
METRICS: dict[str, dict[str, str]] = {
    "lighting_readings": {m: f"r.{m}" for m in ("power_w", "illuminance_level", "voltage_v", "current_a",
                                                 "energy_kwh")},
    "cabinet_readings": {"power_kw": "(r.power_r_kw + r.power_s_kw + r.power_t_kw)", "energy_kwh": "r.energy_kwh",
                         **{m: f"r.{m}" for m in ("voltage_r_v", "voltage_s_v", "voltage_t_v", "current_r_a",
                                                  "current_s_a", "current_t_a")}},
    "water_readings": {m: f"r.{m}" for m in ("consumption_m3", "flow_lph", "pressure_bar", "battery_level")},
    "traffic_readings": {m: f"r.{m}" for m in ("intensity", "occupancy", "avg_speed_kmh")},
    "environment_readings": {m: f"r.{m}" for m in ("pm25", "pm10", "no2", "o3", "co", "so2", "temperature_c",
                                                    "relative_humidity", "precipitation_mm", "laeq_db", "lamax_db",
                                                    "water_level_m")},
}
ROLLUP_FAMILY = {"lighting_readings": "lighting", "cabinet_readings": "cabinet", "water_readings": "water",
                 "traffic_readings": "traffic", "environment_readings": "environment"}

# (table, metric, function) -> expression over rollup rows (u) that equals the raw aggregate. avg is weighted by
# the bucket's reading count, which is exact when the metric is present in every reading of that kind.
_R_AVG = "sum(u.{col} * u.readings) / nullif(sum(u.readings) FILTER (WHERE u.{col} IS NOT NULL), 0)"
ROLLUP_EXPR: dict[tuple[str, str, str], str] = {}
for _table, _metric, _fn, _col in (
    ("lighting_readings", "power_w", "avg", "avg_power_w"), ("lighting_readings", "power_w", "max", "max_power_w"),
    ("lighting_readings", "illuminance_level", "avg", "avg_illuminance"),
    ("lighting_readings", "energy_kwh", "min", "min_energy_kwh"),
    ("lighting_readings", "energy_kwh", "max", "max_energy_kwh"),
    ("cabinet_readings", "power_kw", "avg", "avg_power_kw"), ("cabinet_readings", "power_kw", "max", "max_power_kw"),
    ("cabinet_readings", "energy_kwh", "min", "min_energy_kwh"),
    ("cabinet_readings", "energy_kwh", "max", "max_energy_kwh"),
    ("water_readings", "consumption_m3", "min", "min_consumption_m3"),
    ("water_readings", "consumption_m3", "max", "max_consumption_m3"),
    ("water_readings", "flow_lph", "avg", "avg_flow_lph"), ("water_readings", "flow_lph", "max", "max_flow_lph"),
    ("water_readings", "pressure_bar", "min", "min_pressure_bar"),
    ("water_readings", "pressure_bar", "avg", "avg_pressure_bar"),
    ("traffic_readings", "intensity", "sum", "vehicles"),
    ("traffic_readings", "avg_speed_kmh", "avg", "avg_speed_kmh"),
    ("traffic_readings", "occupancy", "avg", "avg_occupancy"),
    ("environment_readings", "pm25", "avg", "avg_pm25"), ("environment_readings", "pm25", "max", "max_pm25"),
    ("environment_readings", "pm10", "avg", "avg_pm10"), ("environment_readings", "no2", "avg", "avg_no2"),
    ("environment_readings", "o3", "avg", "avg_o3"), ("environment_readings", "co", "avg", "avg_co"),
    ("environment_readings", "temperature_c", "avg", "avg_temperature_c"),
    ("environment_readings", "relative_humidity", "avg", "avg_relative_humidity"),
    ("environment_readings", "precipitation_mm", "sum", "precipitation_mm"),
    ("environment_readings", "lamax_db", "max", "max_lamax_db"),
    ("environment_readings", "water_level_m", "avg", "avg_water_level_m"),
    ("environment_readings", "water_level_m", "max", "max_water_level_m"),
):
    ROLLUP_EXPR[(_table, _metric, _fn)] = (_R_AVG if _fn == "avg" else f"{_fn}(u.{{col}})").format(col=_col)
for _table in METRICS:
    for _metric in METRICS[_table]:
        ROLLUP_EXPR[(_table, _metric, "count")] = "sum(u.readings)"

ROLLUPS = {"1h": timedelta(hours=1), "15m": timedelta(minutes=15)}  # coarsest first
# Rollup bucket origin on both paths: TimescaleDB's time_bucket default, and the plain views' date_bin origin.
ROLLUP_ORIGIN = datetime.fromisoformat("2000-01-03T00:00:00+00:00")


@dataclass(frozen=True)
class SeriesRequest:
    table: str
    metric: str
    fn: str
    width: timedelta
    origin: datetime
    start: datetime
    end: datetime
    device_id: str | None  # one device, or a set chosen by flt
    flt: DeviceFilter
    fill: str  # none / null / zero


def _raw_agg(table: str, metric: str, fn: str) -> str:
    expr = METRICS[table][metric]
    if fn == "count":
        return "count(*)"  # readings (rows) in the bucket, as the rollups count them
    if fn == "last":
        return f"(array_agg({expr} ORDER BY r.time DESC) FILTER (WHERE {expr} IS NOT NULL))[1]"
    return f"{fn}({expr})"


def _aligned(t: datetime, step: timedelta) -> bool:
    return (t - ROLLUP_ORIGIN) % step == timedelta(0)


def rollup_for(req: SeriesRequest) -> str | None:
    """The coarsest rollup that gives exactly the raw result for this request, or None."""
    if (req.table, req.metric, req.fn) not in ROLLUP_EXPR:
        return None
    for name, step in ROLLUPS.items():
        if (req.width % step == timedelta(0) and _aligned(req.origin, step) and _aligned(req.start, step)
                and _aligned(req.end, step)):
            return name
    return None


def query(req: SeriesRequest, rollup: str | None, params: dict[str, Any]) -> sql.Composed:
    params.update(width=req.width, origin=req.origin, start=req.start, end=req.end, device=req.device_id)
    if rollup is None:
        source = sql.SQL("{} r").format(sql.Identifier("ioc", req.table))
        time_col, agg = sql.SQL("r.time"), sql.SQL(_raw_agg(req.table, req.metric, req.fn))
    else:
        view = f"{ROLLUP_FAMILY[req.table]}_{rollup}"
        source = sql.SQL("{} u").format(sql.Identifier("ioc", view))
        time_col, agg = sql.SQL("u.bucket"), sql.SQL(ROLLUP_EXPR[(req.table, req.metric, req.fn)])
    alias = sql.SQL("r") if rollup is None else sql.SQL("u")
    if req.device_id is not None:
        devices = sql.SQL("{}.device_id = %(device)s").format(alias)
    else:
        devices = sql.SQL("{}.device_id IN (SELECT d.device_id FROM ioc.devices d WHERE {})").format(
            alias, req.flt.where(params))
    body = sql.SQL(
        """SELECT date_bin(%(width)s, {t}, %(origin)s) AS bucket, {agg} AS value
           FROM {source} WHERE {devices} AND {t} >= %(start)s AND {t} < %(end)s GROUP BY 1"""
    ).format(t=time_col, agg=agg, source=source, devices=devices)
    if req.fill == "none":
        return sql.SQL("{} ORDER BY 1").format(body)
    empty = sql.SQL("0") if req.fill == "zero" else sql.SQL("NULL")
    return sql.SQL(
        """WITH b AS ({body})
           SELECT g.bucket, coalesce(b.value, {empty}) AS value
           FROM generate_series(date_bin(%(width)s, %(start)s::timestamptz, %(origin)s),
                                %(end)s::timestamptz - interval '1 microsecond', %(width)s) AS g(bucket)
           LEFT JOIN b USING (bucket) ORDER BY 1"""
    ).format(body=body, empty=empty)


def run(conn: psycopg.Connection[Any], req: SeriesRequest, rollup: str | None) -> list[tuple[datetime, float | None]]:
    params: dict[str, Any] = {}
    rows = conn.execute(query(req, rollup, params), params).fetchall()
    return [(r[0], None if r[1] is None else float(r[1])) for r in rows]  # sums of bigints come as Decimal
