"""Cấp nước (water): consumption per metered area (DMA), minimum night flow (leaks), network pressure, alarms."""

from __future__ import annotations

from dashboards.builder import BLUE, GREEN, ORANGE, RED, YELLOW, Dashboard, Row, SqlTarget, Thresholds
from dashboards.panels import barchart, bargauge, stat, table, timeseries
from dashboards.sql import CITY, END, METER_USE, PLACE, WARD, WATER, bucket, local, tiered

# Minimum night flow is read between 01 and 05 h local, when almost nobody draws water: what still flows into
# a DMA then is mostly leakage. Shown for the nights in the range and the night before its start, so a short
# daytime range still shows the last night.
MNF_HOURS = (1, 4)
# Minimum service pressure 1 bar (≈ 10 m head); above 6 bar pipes and fittings suffer.
PRESSURE = Thresholds(RED, ((1.0, YELLOW), (1.5, GREEN), (6.0, ORANGE)), show="line")

# Network points only (300 of a city's 25 300 water devices), narrowed inside each branch.
SRC = tiered(WATER, devices="kind = 'network_point' AND city = '$city'")
INLET = "d.kind = 'network_point' AND d.metadata ->> 'role' = 'inlet'"
INLETS = "w.device_id = ANY (ARRAY (SELECT device_id FROM ioc.devices WHERE kind = 'network_point' AND city = '$city'))"

CONSUMPTION_PER_DMA = SqlTarget(f"""
SELECT d.site AS "DMA", sum(m.used) AS "Tiêu thụ"
  FROM {METER_USE} m JOIN ioc.devices d USING (device_id)
 WHERE {PLACE} AND d.kind = 'meter'
 GROUP BY 1 ORDER BY 1""")

# Inlets narrowed inside the branches, not after the join: the planner underestimates a metadata condition on
# ioc.devices and would re-scan the rollup once per inlet (measured 8 s at city size for 30 days).
INFLOW = SqlTarget(f"""
SELECT {bucket()}, d.site AS metric, sum(r.flow_lph) / nullif(sum(r.n), 0) / 1000 AS value
  FROM {tiered(WATER, devices="kind = 'network_point' AND metadata ->> 'role' = 'inlet' AND city = '$city'")} r
  JOIN ioc.devices d USING (device_id)
 WHERE {PLACE}
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

MNF_WINDOW = (f"{INLETS} AND w.bucket > $__timeFrom()::timestamptz - interval '1 day' AND w.bucket <= {END} "
              f"AND extract(hour FROM {local('w.bucket')}) BETWEEN {MNF_HOURS[0]} AND {MNF_HOURS[1]}")

MNF = SqlTarget(f"""
SELECT date_trunc('day', {local('w.bucket')}) AT TIME ZONE 'Asia/Ho_Chi_Minh' AS "time", d.site AS metric,
       min(w.avg_flow_lph) / 1000 AS value
  FROM ioc.water_1h w JOIN ioc.devices d USING (device_id)
 WHERE {MNF_WINDOW} AND {PLACE} AND {INLET}
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

# Night flow against the DMA's mean inflow over the day before the end of the range: a high share is a leak.
MNF_SHARE = SqlTarget(f"""
SELECT d.site AS dma,
       min(w.avg_flow_lph) FILTER (WHERE extract(hour FROM {local('w.bucket')}) BETWEEN {MNF_HOURS[0]}
                                   AND {MNF_HOURS[1]})
         / nullif(avg(w.avg_flow_lph), 0) AS night_share
  FROM ioc.water_1h w JOIN ioc.devices d USING (device_id)
 WHERE {INLETS} AND w.bucket > {END} - interval '1 day' AND w.bucket <= {END} AND {PLACE} AND {INLET}
 GROUP BY 1 ORDER BY 2 DESC NULLS LAST""")

PRESSURE_SERIES = SqlTarget(f"""
SELECT {bucket()}, d.device_id AS metric, min(r.min_pressure_bar) AS value
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE} AND d.kind = 'network_point'
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

# Rows with alarms are few and have their own partial index (migration 0009).
IN_ALARM = SqlTarget(f"""
SELECT count(DISTINCT w.device_id) AS devices_in_alarm
  FROM ioc.water_readings w JOIN ioc.devices d USING (device_id)
 WHERE cardinality(w.alarms) > 0 AND w.time > {END} - interval '2 hours' AND w.time <= {END} AND {PLACE}""")

# Alarm kinds from the readings of the last 24 hours of the range (raw rows: the rollups count, not name, them).
ALARMS = SqlTarget(f"""
SELECT a.alarm AS "Cảnh báo", count(DISTINCT w.device_id) AS "Số thiết bị", max(w.time) AS "Gần nhất"
  FROM ioc.water_readings w
 CROSS JOIN LATERAL unnest(w.alarms) AS a (alarm)
  JOIN ioc.devices d USING (device_id)
 WHERE w.time > greatest($__timeFrom()::timestamptz, {END} - interval '24 hours') AND w.time <= {END}
   AND cardinality(w.alarms) > 0 AND {PLACE}
 GROUP BY 1 ORDER BY 2 DESC""")


def dashboard() -> Dashboard:
    return Dashboard(
        uid="ioc-water", title="Cấp nước", folder="linh-vuc",
        description="Water supply: consumption per district metered area (DMA), minimum night flow as the leak "
                    "indicator, pressure at network points, and meter alarms.",
        variables=[CITY, WARD],
        items=[
            barchart("Tiêu thụ theo DMA", "Water drawn through the household meters of each DMA in the range, m³ "
                                          "(hourly rollup).", [CONSUMPTION_PER_DMA], unit="m3", decimals=0,
                     thresholds=Thresholds(BLUE), width=10),
            timeseries("Lưu lượng vào DMA", "Inflow measured at each DMA's inlet point, m³/h.", [INFLOW],
                       unit="suffix: m³/h", decimals=2, thresholds=Thresholds(BLUE), width=14),
            Row("Thất thoát"),
            timeseries("Lưu lượng đêm nhỏ nhất (MNF)", "Per DMA and night, the lowest hourly mean inflow between "
                                                        "01 and 05 h local, m³/h; nights in the range and the one "
                                                        "before it. A rising MNF is a new leak.", [MNF],
                       unit="suffix: m³/h", decimals=2, thresholds=Thresholds(BLUE), bars=True, width=12),
            bargauge("MNF so với lưu lượng trung bình", "Minimum night flow as a share of the mean inflow over "
                                                        "the last day of the range; above 40 % points to leaks.",
                     [MNF_SHARE], unit="percentunit", decimals=0, min=0, max=1, width=12,
                     thresholds=Thresholds(GREEN, ((0.25, YELLOW), (0.4, RED)))),
            Row("Áp lực và cảnh báo"),
            timeseries("Áp lực tại điểm đo", "Lowest pressure per network point and bucket, bar. Red below the "
                                             "1 bar service minimum.", [PRESSURE_SERIES], unit="pressurebar",
                       decimals=2, thresholds=PRESSURE, width=12),
            stat("Thiết bị đang cảnh báo", "Meters and network points whose readings in the last 2 hours of the "
                                           "range carry an alarm (leak, tamper, backflow, low battery).",
                 [IN_ALARM], unit="none", decimals=0, thresholds=Thresholds(GREEN, ((1, ORANGE), (100, RED))),
                 width=6, height=8),
            table("Cảnh báo đồng hồ", "Alarm kinds reported by meters and points in the last 24 hours of the "
                                      "range, with the number of devices.", [ALARMS], unit="none", decimals=0,
                  thresholds=Thresholds(GREEN, ((1, ORANGE),)), width=6),
        ],
    )

