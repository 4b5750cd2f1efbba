"""15-minute and hourly rollups per family.

One definition serves both storage paths: continuous aggregates (real-time, so the newest bucket is
never stale) on TimescaleDB, ordinary views on plain PostgreSQL. Both expose the same columns, so
dashboards and the API query ``ioc.<family>_15m`` / ``ioc.<family>_1h`` on either path.
"""

from __future__ import annotations

ROLLUPS: dict[str, tuple[str, str, str]] = {
    # name: (source table, extra group-by columns, aggregate expressions)
    "lighting": (
        "ioc.lighting_readings",
        "",
        """count(*) AS readings,
           avg(power_w) AS avg_power_w,
           max(power_w) AS max_power_w,
           avg(illuminance_level) AS avg_illuminance,
           count(*) FILTER (WHERE power_state IN ('on', 'low')) AS lit_readings,
           count(*) FILTER (WHERE lamp_status IS NOT NULL AND lamp_status <> 'ok') AS fault_readings,
           min(energy_kwh) AS min_energy_kwh,
           max(energy_kwh) AS max_energy_kwh""",
    ),
    "cabinet": (
        "ioc.cabinet_readings",
        "",
        """count(*) AS readings,
           avg(power_r_kw + power_s_kw + power_t_kw) AS avg_power_kw,
           max(power_r_kw + power_s_kw + power_t_kw) AS max_power_kw,
           min(least(voltage_r_v, voltage_s_v, voltage_t_v)) AS min_voltage_v,
           min(energy_kwh) AS min_energy_kwh,
           max(energy_kwh) AS max_energy_kwh""",
    ),
    "water": (
        "ioc.water_readings",
        "",
        """count(*) AS readings,
           min(consumption_m3) AS min_consumption_m3,
           max(consumption_m3) AS max_consumption_m3,
           avg(flow_lph) AS avg_flow_lph,
           max(flow_lph) AS max_flow_lph,
           min(pressure_bar) AS min_pressure_bar,
           avg(pressure_bar) AS avg_pressure_bar,
           count(*) FILTER (WHERE cardinality(alarms) > 0) AS alarm_readings""",
    ),
    "traffic": (
        "ioc.traffic_readings",
        ", lane_id",
        """count(*) AS readings,
           sum(intensity) AS vehicles,
           avg(avg_speed_kmh) AS avg_speed_kmh,
           avg(occupancy) AS avg_occupancy,
           count(*) FILTER (WHERE congested) AS congested_readings,
           sum(motorcycles) AS motorcycles,
           sum(cars) AS cars,
           sum(buses) AS buses,
           sum(trucks) AS trucks""",
    ),
    "environment": (
        "ioc.environment_readings",
        "",
        """count(*) AS readings,
           avg(pm25) AS avg_pm25,
           max(pm25) AS max_pm25,
           avg(pm10) AS avg_pm10,
           avg(no2) AS avg_no2,
           avg(o3) AS avg_o3,
           avg(co) AS avg_co,
           avg(temperature_c) AS avg_temperature_c,
           avg(relative_humidity) AS avg_relative_humidity,
           sum(precipitation_mm) AS precipitation_mm,
           avg(power(10.0::double precision, laeq_db / 10.0)) AS laeq_energy,
           max(lamax_db) AS max_lamax_db,
           avg(water_level_m) AS avg_water_level_m,
           max(water_level_m) AS max_water_level_m""",
    ),
}

WIDTHS = {"15m": "15 minutes", "1h": "1 hour"}

# Refresh looks back 30 days so gateway back-fills reach the rollups; it must stay well inside the raw
# retention (400 days) or a refresh would empty buckets whose raw chunks were dropped.
REFRESH_START = "30 days"
ROLLUP_RETENTION = "5 years"


def statements(timescaledb: bool) -> list[str]:
    out: list[str] = []
    for family, (source, extra_group, aggregates) in ROLLUPS.items():
        for suffix, width in WIDTHS.items():
            view = f"ioc.{family}_{suffix}"
            if timescaledb:
                out.append(
                    f"""CREATE MATERIALIZED VIEW {view}
                        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                        SELECT time_bucket(INTERVAL '{width}', time) AS bucket, device_id{extra_group}, {aggregates}
                        FROM {source} GROUP BY 1, device_id{extra_group} WITH NO DATA"""
                )
                out.append(
                    f"""SELECT add_continuous_aggregate_policy('{view}', start_offset => INTERVAL '{REFRESH_START}',
                        end_offset => INTERVAL '{width}', schedule_interval => INTERVAL '{width}')"""
                )
                out.append(f"SELECT add_retention_policy('{view}', INTERVAL '{ROLLUP_RETENTION}')")
            else:
                out.append(
                    f"""CREATE VIEW {view} AS
                        SELECT date_bin(INTERVAL '{width}', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
                               device_id{extra_group}, {aggregates}
                        FROM {source} GROUP BY 1, device_id{extra_group}"""
                )
    return out
