"""SQL building blocks shared by the dashboards: variable filters and the rollup choice.

Every SQL panel joins its rows to ``ioc.devices d`` and filters on the dashboard variables through the
fragments below, so the variables mean the same thing everywhere.

Rollup choice (``tiered``): one query holds three branches — raw readings, ``ioc.<family>_15m`` and
``ioc.<family>_1h`` — each guarded by a comparison of ``$__interval_ms`` with the rollup width. Grafana
substitutes the number before the query reaches PostgreSQL, so two of the guards are constant-false and the
planner drops those branches without reading them (a ``One-Time Filter: false``). Rows come out with the
columns ``t`` (bucket start), ``device_id`` and sums + counts (never averages), so an average over any bucket
stays exact. A rollup is used from its own width up; buckets are then widened to a multiple of that width
(``bucket``), so a 20-minute ``$__interval`` reads 15-minute rows in 30-minute buckets instead of showing a
saw-tooth of one-or-two rollup rows per bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.builder import Variable

ALL = "'__all'"  # allValue of multi-value variables: inserted verbatim by Grafana when "All" is selected

CITY = Variable(
    name="city", label="Thành phố", description="City (slug). Sandbox cities (sim-…) are listed last and never "
                                                "included unless chosen.",
    # Single-valued: a sandbox city (issue 12) is seen only when picked on purpose.
    query="SELECT city FROM (SELECT DISTINCT city FROM ioc.devices) c ORDER BY city LIKE 'sim-%', city",
    default="dien-bien-phu",
)
WARD = Variable(
    name="ward", label="Phường / xã", description="Wards or communes of the chosen city; All includes devices "
                                                  "with no ward (river gauges, gateways).",
    query="SELECT DISTINCT ward FROM ioc.devices WHERE city = '$city' AND ward IS NOT NULL ORDER BY 1",
    default=["$__all"], multi=True, all_value=ALL,
)
FAMILY = Variable(
    name="family", label="Lĩnh vực", description="Device family.",
    query="SELECT unnest(ARRAY['lighting', 'water', 'traffic', 'environment']) AS family",
    default=["$__all"], multi=True, all_value=ALL,
)

CITY_FILTER = "d.city = '$city'"
WARD_FILTER = "('__all' IN ($ward) OR d.ward IN ($ward))"
FAMILY_FILTER = "('__all' IN ($family) OR d.family IN ($family))"
PLACE = f"{CITY_FILTER} AND {WARD_FILTER}"
# The end of the dashboard's time range: "now" panels show the state at the range's end.
END = "$__timeTo()::timestamptz"
# A device is silent when nothing arrived for three of its report intervals (s: ioc.device_state). One never
# heard from is not commissioned yet, not silent (as the fleet exporter counts it): importing a registry before
# installation must not paint the map red.
SILENT = f"(s.last_seen < {END} - make_interval(secs => 3 * d.report_interval_s))"

MIN_15M_MS = 15 * 60 * 1000
MIN_1H_MS = 60 * 60 * 1000

# Bucket width in seconds for the active tier (see module docstring).
BUCKET_SECONDS = (f"(CASE WHEN $__interval_ms < {MIN_15M_MS} THEN $__interval_ms / 1000.0 "
                  f"WHEN $__interval_ms < {MIN_1H_MS} THEN ceil($__interval_ms / {MIN_15M_MS}.0) * 900 "
                  f"ELSE ceil($__interval_ms / {MIN_1H_MS}.0) * 3600 END)")


def bucket(column: str = "r.t") -> str:
    """The time column of a tiered query: ``column`` floored to the active tier's bucket width."""
    return f'to_timestamp(floor(extract(epoch FROM {column}) / {BUCKET_SECONDS}) * {BUCKET_SECONDS}) AS "time"'


@dataclass(frozen=True)
class Tier:
    """How one family's raw rows and rollup rows map onto the same columns."""
    raw_table: str
    rollup: str  # ioc.<rollup>_15m / _1h
    raw: str  # select list over the raw table (must produce the same columns as ``agg``)
    agg: str  # select list over a rollup
    raw_keys: str = "device_id"  # the grouping columns, from the raw table and from the rollups
    agg_keys: str = "device_id"


def tiered(tier: Tier, time_filter: str = "$__timeFilter({col})", devices: str | None = None) -> str:
    """A FROM-able subquery ``(…)`` with columns ``t, device_id, …``; ``time_filter`` is a condition on
    ``{col}`` (the time or bucket column of each branch), by default the dashboard's time range. ``devices``,
    a condition on ``ioc.devices``, narrows every branch to those devices through the (device_id, time)
    indexes: 300 network points are then read without scanning 25 000 meters' rows."""
    raw_filter, agg_filter = time_filter.format(col="time"), time_filter.format(col="bucket")
    if devices:
        only = f" AND device_id = ANY (ARRAY (SELECT device_id FROM ioc.devices WHERE {devices}))"
        raw_filter, agg_filter = raw_filter + only, agg_filter + only
    return f"""(
    SELECT time AS t, {tier.raw_keys}, {tier.raw} FROM {tier.raw_table}
     WHERE $__interval_ms < {MIN_15M_MS} AND {raw_filter}
    UNION ALL
    SELECT bucket AS t, {tier.agg_keys}, {tier.agg} FROM ioc.{tier.rollup}_15m
     WHERE $__interval_ms >= {MIN_15M_MS} AND $__interval_ms < {MIN_1H_MS} AND {agg_filter}
    UNION ALL
    SELECT bucket AS t, {tier.agg_keys}, {tier.agg} FROM ioc.{tier.rollup}_1h
     WHERE $__interval_ms >= {MIN_1H_MS} AND {agg_filter}
  )"""


# Water drawn through meters in the range: meters are cumulative counters, so per meter it is the newest value
# near the end minus the oldest near the start. Only hourly-rollup rows within 3 hours of either end are read
# (meters report hourly): a 30-day range costs what a 6-hour one does.
METER_EDGE = "interval '3 hours'"
METER_USE = f"""(
    SELECT w.device_id,
           max(w.max_consumption_m3) FILTER (WHERE w.bucket > $__timeTo()::timestamptz - {METER_EDGE})
           - min(w.min_consumption_m3) FILTER (WHERE w.bucket < $__timeFrom()::timestamptz + {METER_EDGE}) AS used
      FROM ioc.water_1h w
     WHERE (w.bucket BETWEEN $__timeFrom() AND $__timeFrom()::timestamptz + {METER_EDGE}
            OR w.bucket BETWEEN $__timeTo()::timestamptz - {METER_EDGE} AND $__timeTo())
     GROUP BY w.device_id
  )"""


def local(column: str) -> str:
    """A timestamptz as Điện Biên Phủ wall-clock time (days and night hours are local)."""
    return f"({column} AT TIME ZONE 'Asia/Ho_Chi_Minh')"


# Street lamps per ward (migration 0009): rows are (t, city, ward, …); filter them with WARD_ROWS.
LIGHTING_WARD = Tier(
    "ioc.lighting_readings r JOIN ioc.devices d USING (device_id)", "lighting_ward",
    raw="1 AS n, (r.power_state IN ('on', 'low'))::int AS lit, r.power_w::float8 AS power_w, "
        "r.illuminance_level::float8 AS illuminance",
    agg="readings AS n, lit_readings AS lit, sum_power_w AS power_w, sum_illuminance AS illuminance",
    raw_keys="d.city, d.ward", agg_keys="city, ward",
)
WARD_ROWS = "r.city = '$city' AND ('__all' IN ($ward) OR r.ward IN ($ward))"

WATER = Tier(
    "ioc.water_readings", "water",
    raw="1 AS n, flow_lph::float8 AS flow_lph, pressure_bar::float8 AS pressure_bar, "
        "pressure_bar::float8 AS min_pressure_bar, (cardinality(alarms) > 0)::int AS alarm_n",
    agg="readings AS n, avg_flow_lph * readings AS flow_lph, avg_pressure_bar * readings AS pressure_bar, "
        "min_pressure_bar, alarm_readings AS alarm_n",
)
TRAFFIC = Tier(
    "ioc.traffic_readings", "traffic",
    raw="lane_id, 1 AS n, intensity::float8 AS vehicles, avg_speed_kmh::float8 AS speed, "
        "occupancy::float8 AS occupancy, congested::int AS congested, motorcycles, cars, buses, trucks",
    agg="lane_id, readings AS n, vehicles::float8, avg_speed_kmh * readings AS speed, "
        "avg_occupancy * readings AS occupancy, congested_readings AS congested, motorcycles, cars, buses, trucks",
)
ENVIRONMENT = Tier(
    "ioc.environment_readings", "environment",
    raw="1 AS n, pm25::float8 AS pm25, (pm25 IS NOT NULL)::int AS pm25_n, pm10::float8 AS pm10, "
        "(pm10 IS NOT NULL)::int AS pm10_n, temperature_c::float8 AS temperature, "
        "(temperature_c IS NOT NULL)::int AS temperature_n, relative_humidity::float8 AS humidity, "
        "precipitation_mm::float8 AS precipitation, power(10.0::float8, laeq_db / 10.0) AS laeq_energy, "
        "(laeq_db IS NOT NULL)::int AS laeq_n, water_level_m::float8 AS level, water_level_m::float8 AS max_level",
    # rollup averages ignore NULLs, so their weights count only the rows that carried the field; a station
    # reports one kind of measurement, so a bucket's rows either all carry it or none do.
    agg="readings AS n, avg_pm25 * readings AS pm25, (avg_pm25 IS NOT NULL)::int * readings AS pm25_n, "
        "avg_pm10 * readings AS pm10, (avg_pm10 IS NOT NULL)::int * readings AS pm10_n, "
        "avg_temperature_c * readings AS temperature, (avg_temperature_c IS NOT NULL)::int * readings "
        "AS temperature_n, avg_relative_humidity * readings AS humidity, precipitation_mm AS precipitation, "
        "laeq_energy * readings AS laeq_energy, (laeq_energy IS NOT NULL)::int * readings AS laeq_n, "
        "avg_water_level_m * readings AS level, max_water_level_m AS max_level",
)
