"""Môi trường & sông Nậm Rốm: air quality against QCVN 05:2023, VN_AQI, noise against QCVN 26, weather, river.

Limits drawn as thresholds:
- QCVN 05:2023/BTNMT: PM2.5 24-hour mean 50 µg/m³ (annual 25), PM10 24-hour mean 100 µg/m³ (annual 50).
- VN_AQI bands (QĐ 1459/QĐ-TCMT): 0–50 good, 51–100 moderate, 101–150 unhealthy for sensitive groups,
  151–200 unhealthy, 201–300 very unhealthy, > 300 hazardous.
- QCVN 26:2010/BTNMT, ordinary areas: 70 dB(A) by day (06–21 h), 55 dB(A) at night (21–06 h). A 2025
  successor regulation exists; its limits for ordinary areas must be checked before these are changed.
- Nậm Rốm alarm levels: see ``RIVER_ALARM_LEVELS_M``.
"""

from __future__ import annotations

from dashboards.builder import (
    BLUE,
    GREEN,
    MAROON,
    ORANGE,
    PURPLE,
    RED,
    YELLOW,
    Dashboard,
    Row,
    SqlTarget,
    Thresholds,
)
from dashboards.panels import bargauge, table, timeseries
from dashboards.sql import BUCKET_SECONDS, CITY, CITY_FILTER, END, ENVIRONMENT, PLACE, WARD, bucket, local, tiered

PM25_24H, PM25_YEAR = 50, 25
PM10_24H, PM10_YEAR = 100, 50
NOISE_DAY_DBA, NOISE_NIGHT_DBA = 70, 55
# Báo động I / II / III on the gauges' datum. The simulated gauges report the level above a local datum with
# báo động I at 3.5 m (``warning_level_m`` in the city file); II and III follow at +0.5 m steps. A real gauge
# reports absolute elevation: set these from the hydro-meteorological station's published levels.
RIVER_ALARM_LEVELS_M = (3.5, 4.0, 4.5)

AQI_THRESHOLDS = Thresholds(GREEN, ((51, YELLOW), (101, ORANGE), (151, RED), (201, PURPLE), (301, MAROON)))
RIVER_THRESHOLDS = Thresholds(GREEN, tuple(zip(RIVER_ALARM_LEVELS_M, (YELLOW, ORANGE, RED), strict=True)),
                              show="line+area")

SRC = tiered(ENVIRONMENT)


def _series(kind: str, value: str) -> SqlTarget:
    return SqlTarget(f"""
SELECT {bucket()}, d.site AS metric, {value} AS value
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE} AND d.kind = '{kind}'
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")


PM25 = _series("air_quality", "sum(r.pm25) / nullif(sum(r.pm25_n), 0)")
PM10 = _series("air_quality", "sum(r.pm10) / nullif(sum(r.pm10_n), 0)")
LAEQ = _series("noise", "10 * log(sum(r.laeq_energy) / nullif(sum(r.laeq_n), 0))")
TEMPERATURE = _series("weather", "sum(r.temperature) / nullif(sum(r.temperature_n), 0)")
HUMIDITY = _series("weather", "sum(r.humidity) / nullif(sum(r.temperature_n), 0)")
# Rain is a sum per bucket; shown as a rate so buckets of any width compare.
RAIN = _series("weather", f"sum(r.precipitation) * 3600 / {BUCKET_SECONDS}")
RIVER = SqlTarget(f"""
SELECT {bucket()}, d.device_id || ' ' || coalesce(d.metadata ->> 'river_km', '') || ' km' AS metric,
       max(r.max_level) AS value
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {CITY_FILTER} AND d.kind = 'river_gauge'
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

AQI_BY_STATION = SqlTarget(f"""
SELECT site, greatest(ioc.vn_aqi('pm25', pm25), ioc.vn_aqi('pm10', pm10)) AS vn_aqi FROM (
  SELECT d.site, avg(e.pm25) AS pm25, avg(e.pm10) AS pm10
    FROM ioc.environment_readings e JOIN ioc.devices d USING (device_id)
   WHERE e.time > {END} - interval '24 hours' AND e.time <= {END} AND {PLACE} AND d.kind = 'air_quality'
   GROUP BY d.site) day_means ORDER BY vn_aqi DESC NULLS LAST""")

# Day (06–21 h) and night (21–06 h) equivalent levels over the range, energy-averaged (hourly rollup).
NOISE_DAY_NIGHT = SqlTarget(f"""
SELECT d.site AS "Trạm",
       10 * log(avg(r.laeq_energy) FILTER (WHERE extract(hour FROM {local('r.bucket')}) BETWEEN 6 AND 20))
         AS "LAeq ngày (06–21 h)",
       10 * log(avg(r.laeq_energy) FILTER (WHERE extract(hour FROM {local('r.bucket')}) NOT BETWEEN 6 AND 20))
         AS "LAeq đêm (21–06 h)"
  FROM ioc.environment_1h r JOIN ioc.devices d USING (device_id)
 WHERE $__timeFilter(r.bucket) AND {PLACE} AND d.kind = 'noise' AND r.laeq_energy > 0
 GROUP BY 1 ORDER BY 1""")

RIVER_LATEST = SqlTarget(f"""
SELECT DISTINCT ON (e.device_id) d.device_id AS "Trạm đo", e.time AS "Thời điểm", e.water_level_m AS "Mực nước",
       (d.metadata ->> 'warning_level_m')::float8 - e.water_level_m AS "Còn cách báo động I"
  FROM ioc.environment_readings e JOIN ioc.devices d USING (device_id)
 WHERE {CITY_FILTER} AND d.kind = 'river_gauge' AND e.water_level_m IS NOT NULL
   AND e.time > {END} - interval '2 hours' AND e.time <= {END}
 ORDER BY e.device_id, e.time DESC""")

PM_THRESHOLDS_25 = Thresholds(GREEN, ((PM25_YEAR, YELLOW), (PM25_24H, RED)), show="line")
PM_THRESHOLDS_10 = Thresholds(GREEN, ((PM10_YEAR, YELLOW), (PM10_24H, RED)), show="line")
NOISE_THRESHOLDS = Thresholds(GREEN, ((NOISE_NIGHT_DBA, YELLOW), (NOISE_DAY_DBA, RED)), show="line")


def dashboard() -> Dashboard:
    return Dashboard(
        uid="ioc-environment", title="Môi trường & sông Nậm Rốm", folder="linh-vuc",
        description="Air quality (PM2.5, PM10, VN_AQI) against QCVN 05:2023/BTNMT, noise against QCVN 26 day and "
                    "night limits, weather, and the Nậm Rốm level against its alarm levels.",
        variables=[CITY, WARD],
        items=[
            Row("Không khí"),
            timeseries("Bụi PM2.5", "PM2.5 per station (µg/m³). Lines: QCVN 05:2023 annual 25 and 24-hour 50 "
                                    "µg/m³ (compare the 24-hour mean, not single readings).", [PM25],
                       unit="suffix: µg/m³", decimals=1, thresholds=PM_THRESHOLDS_25, width=9),
            timeseries("Bụi PM10", "PM10 per station (µg/m³). Lines: QCVN 05:2023 annual 50 and 24-hour 100 µg/m³.",
                       [PM10], unit="suffix: µg/m³", decimals=1, thresholds=PM_THRESHOLDS_10, width=9),
            bargauge("VN_AQI theo trạm (24 giờ)", "Daily VN_AQI per air station from the 24-hour mean PM2.5 and "
                                                  "PM10 before the end of the range (higher sub-index).",
                     [AQI_BY_STATION], unit="none", decimals=0, thresholds=AQI_THRESHOLDS, min=0, max=500, width=6),
            Row("Tiếng ồn"),
            timeseries("Tiếng ồn LAeq", "Equivalent continuous sound level per station, dB(A), energy-averaged "
                                        "per bucket. Lines: QCVN 26 night 55 and day 70 dB(A).", [LAEQ],
                       unit="suffix: dB(A)", decimals=1, thresholds=NOISE_THRESHOLDS, width=14),
            table("LAeq ngày / đêm", "Day (06–21 h) and night (21–06 h) LAeq per station over the range, from "
                                     "hourly rollups; red above the QCVN 26 limits (70 / 55 dB(A)).",
                  [NOISE_DAY_NIGHT], unit="suffix: dB(A)", decimals=1,
                  thresholds=Thresholds(GREEN, ((NOISE_DAY_DBA, RED),)), width=10,
                  overrides=[{"matcher": {"id": "byName", "options": "LAeq đêm (21–06 h)"},
                              "properties": [{"id": "thresholds", "value": Thresholds(
                                  GREEN, ((NOISE_NIGHT_DBA, RED),)).to_json()},
                                  {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
                             {"matcher": {"id": "byName", "options": "LAeq ngày (06–21 h)"},
                              "properties": [{"id": "custom.cellOptions", "value": {"type": "color-text"}}]}]),
            Row("Thời tiết"),
            timeseries("Nhiệt độ", "Air temperature per weather station.", [TEMPERATURE], unit="celsius",
                       decimals=1, thresholds=Thresholds(BLUE, ((35, ORANGE), (39, RED)))),
            timeseries("Độ ẩm", "Relative humidity per weather station.", [HUMIDITY], unit="percentunit",
                       decimals=0, thresholds=Thresholds(BLUE), min=0, max=1),
            timeseries("Lượng mưa", "Rain per weather station as mm per hour (heavy rain ≥ 16 mm/h, very heavy "
                                    "≥ 50 mm/h: short intense storms cause the local floods).", [RAIN],
                       unit="suffix: mm/h", decimals=1, thresholds=Thresholds(BLUE, ((16, ORANGE), (50, RED))),
                       bars=True),
            Row("Sông Nậm Rốm"),
            timeseries("Mực nước sông Nậm Rốm", "Highest level per gauge and bucket; bands: alarm levels I / II / "
                                                "III (báo động).", [RIVER], unit="lengthm", decimals=2,
                       thresholds=RIVER_THRESHOLDS, width=14),
            table("Trạm đo mực nước", "Newest level per gauge and its margin below the gauge's own alarm "
                                      "level I (negative: above it).", [RIVER_LATEST], unit="lengthm", decimals=2,
                  thresholds=RIVER_THRESHOLDS, width=10),
        ],
    )

