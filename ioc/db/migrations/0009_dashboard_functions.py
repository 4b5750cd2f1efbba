"""SQL helpers the Grafana dashboards call, with one signature on both storage paths.

- ``ioc.vn_aqi(pollutant, concentration)``: the VN_AQI sub-index of a 24-hour mean concentration (µg/m³),
  by linear interpolation between the breakpoints of Decision 1459/QĐ-TCMT (2019) of the Vietnam
  Environment Administration. ``NULL`` in, ``NULL`` out; above the last breakpoint it is capped at 500.
- ``ioc.storage_stats()``: per reading table, its size before and after compression (TimescaleDB's
  ``hypertable_compression_stats``; on plain PostgreSQL both are the table's size: ratio 1).
- ``ioc.lighting_ward_15m`` / ``ioc.lighting_ward_1h``: street-lamp readings rolled up per city and ward.
  The per-device rollups of 0005 do not shrink 15 000 lamps that report every 15 minutes (a 30-day lighting
  panel would read 10 million hourly rows); per ward it is a few thousand. Continuous aggregates on TimescaleDB
  (the 15-minute one joins ``ioc.devices``, the hourly one is built on it), views on plain PostgreSQL.
- a partial index on water readings that carry alarms: the alarm panels read those rows only.
"""

from __future__ import annotations

# (pollutant, concentration breakpoints BP_i) against the index breakpoints I_i below (QĐ 1459/QĐ-TCMT, table 2).
AQI_INDEX = (0, 50, 100, 150, 200, 300, 400, 500)
AQI_BREAKPOINTS = {
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
}
TABLES = ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings", "environment_readings")


def _vn_aqi() -> str:
    rows = ", ".join(
        f"('{p}', {bp[i]}, {bp[i + 1]}, {AQI_INDEX[i]}, {AQI_INDEX[i + 1]})"
        for p, bp in AQI_BREAKPOINTS.items() for i in range(len(bp) - 1)
    )
    return f"""
CREATE FUNCTION ioc.vn_aqi(pollutant text, concentration double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN concentration IS NULL THEN NULL
        WHEN concentration >= max(bp_hi) THEN 500
        ELSE round(max((i_hi - i_lo) / (bp_hi - bp_lo)::double precision * (greatest(concentration, 0) - bp_lo) + i_lo)
                   FILTER (WHERE greatest(concentration, 0) >= bp_lo AND greatest(concentration, 0) < bp_hi))::integer
    END
    FROM (VALUES {rows}) AS b (p, bp_lo, bp_hi, i_lo, i_hi)
    WHERE p = pollutant
$$"""


def _storage_stats(timescaledb: bool) -> str:
    if timescaledb:
        # Chunk tables hold what is not compressed yet; the compression stats add what is (hypertable_size()
        # would be simpler but costs ~0.1 s per table on the catalog, too slow for a panel).
        names = ", ".join(f"'{t}'" for t in TABLES)
        return f"""
CREATE FUNCTION ioc.storage_stats()
RETURNS TABLE (relation text, uncompressed_bytes bigint, stored_bytes bigint)
LANGUAGE sql STABLE AS $$
    WITH raw AS (
        SELECT hypertable_name AS r,
               sum(pg_total_relation_size(format('%I.%I', chunk_schema, chunk_name)::regclass)) AS b
          FROM timescaledb_information.chunks WHERE hypertable_schema = 'ioc' GROUP BY 1)
    SELECT t.r, (coalesce(raw.b, 0) + coalesce(s.before_compression_total_bytes, 0))::bigint,
           (coalesce(raw.b, 0) + coalesce(s.after_compression_total_bytes, 0))::bigint
      FROM unnest(ARRAY[{names}]) AS t (r)
      LEFT JOIN raw USING (r)
     CROSS JOIN LATERAL hypertable_compression_stats(('ioc.' || t.r)::regclass) s
$$"""
    else:
        parts = " UNION ALL ".join(
            f"SELECT '{t}'::text, pg_total_relation_size('ioc.{t}'), pg_total_relation_size('ioc.{t}')"
            for t in TABLES)
    return f"""
CREATE FUNCTION ioc.storage_stats()
RETURNS TABLE (relation text, uncompressed_bytes bigint, stored_bytes bigint)
LANGUAGE sql STABLE AS $$ SELECT r, u::bigint, s::bigint FROM ({parts}) x (r, u, s) $$"""


WARD_AGGREGATES = """count(*) AS readings,
       count(*) FILTER (WHERE r.power_state IN ('on', 'low')) AS lit_readings,
       count(*) FILTER (WHERE r.lamp_status IS NOT NULL AND r.lamp_status <> 'ok') AS fault_readings,
       sum(r.power_w) AS sum_power_w, sum(r.illuminance_level) AS sum_illuminance"""
WARD_REGROUP = """sum(readings)::bigint AS readings, sum(lit_readings)::bigint AS lit_readings,
       sum(fault_readings)::bigint AS fault_readings, sum(sum_power_w) AS sum_power_w,
       sum(sum_illuminance) AS sum_illuminance"""


def _lighting_ward(timescaledb: bool) -> list[str]:
    if not timescaledb:
        return [
            f"""CREATE VIEW ioc.lighting_ward_15m AS
                SELECT date_bin(INTERVAL '15 minutes', r.time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
                       d.city, d.ward, {WARD_AGGREGATES}
                  FROM ioc.lighting_readings r JOIN ioc.devices d ON d.device_id = r.device_id
                 GROUP BY 1, d.city, d.ward""",
            f"""CREATE VIEW ioc.lighting_ward_1h AS
                SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
                       city, ward, {WARD_REGROUP}
                  FROM ioc.lighting_ward_15m GROUP BY 1, city, ward""",
        ]
    # Same refresh window and retention as the per-device rollups (0005).
    return [
        f"""CREATE MATERIALIZED VIEW ioc.lighting_ward_15m
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT time_bucket(INTERVAL '15 minutes', r.time) AS bucket, d.city, d.ward, {WARD_AGGREGATES}
              FROM ioc.lighting_readings r JOIN ioc.devices d ON d.device_id = r.device_id
             GROUP BY 1, d.city, d.ward WITH NO DATA""",
        """SELECT add_continuous_aggregate_policy('ioc.lighting_ward_15m', start_offset => INTERVAL '30 days',
               end_offset => INTERVAL '15 minutes', schedule_interval => INTERVAL '15 minutes')""",
        "SELECT add_retention_policy('ioc.lighting_ward_15m', INTERVAL '5 years')",
        f"""CREATE MATERIALIZED VIEW ioc.lighting_ward_1h
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, city, ward, {WARD_REGROUP}
              FROM ioc.lighting_ward_15m GROUP BY 1, city, ward WITH NO DATA""",
        """SELECT add_continuous_aggregate_policy('ioc.lighting_ward_1h', start_offset => INTERVAL '30 days',
               end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')""",
        "SELECT add_retention_policy('ioc.lighting_ward_1h', INTERVAL '5 years')",
    ]


def statements(timescaledb: bool) -> list[str]:
    return [_vn_aqi(), _storage_stats(timescaledb), *_lighting_ward(timescaledb),
            "CREATE INDEX water_readings_alarms_idx ON ioc.water_readings (time DESC) WHERE cardinality(alarms) > 0"]
