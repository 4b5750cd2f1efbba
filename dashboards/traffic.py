"""Giao thông (ITS): volume and speed per intersection and lane, congestion, vehicle classes, and this week
against the same weekday of the previous weeks (rush hours, the Hoa Ban festival in March, 7 May)."""

from __future__ import annotations

from dashboards.builder import BLUE, GREEN, ORANGE, RED, YELLOW, Dashboard, Row, SqlTarget, Thresholds
from dashboards.panels import bargauge, piechart, stat, table, timeseries
from dashboards.sql import BUCKET_SECONDS, CITY, PLACE, TRAFFIC, WARD, bucket, tiered

PREVIOUS_WEEKS = 3
# 100 points: 15-minute buckets over a day, so a 24-hour panel reads the 15-minute rollup (60 counters × 4 lanes
# every minute is 345 000 raw rows a day; four weeks of them for the comparison).
POINTS = 100
SRC = tiered(TRAFFIC)
INTERSECTION = "coalesce(d.metadata ->> 'intersection', d.site)"
# The range itself and the same range 1, 2, 3 weeks earlier (an OR of ranges: each can use the time index).
WEEKS_FILTER = "(" + " OR ".join(
    f"{{col}} BETWEEN $__timeFrom()::timestamptz - interval '{7 * k} days' "
    f"AND $__timeTo()::timestamptz - interval '{7 * k} days'" for k in range(PREVIOUS_WEEKS + 1)) + ")"
WEEKS_SRC = tiered(TRAFFIC, WEEKS_FILTER)
WEEK_LABEL = "CASE k WHEN 0 THEN 'Tuần này' ELSE k || ' tuần trước' END"

VOLUME = SqlTarget(f"""
SELECT {bucket()}, {INTERSECTION} AS metric, sum(r.vehicles) * 3600 / {BUCKET_SECONDS} AS value
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE}
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

SPEED = SqlTarget(f"""
SELECT {bucket()}, {INTERSECTION} AS metric, sum(r.speed) / nullif(sum(r.n), 0) AS value
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE}
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

CONGESTION = SqlTarget(f"""
SELECT {INTERSECTION} AS intersection, sum(r.congested)::float8 / nullif(sum(r.n), 0) AS congested_share
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE}
 GROUP BY 1 ORDER BY 2 DESC NULLS LAST""")

CLASSES = SqlTarget(f"""
SELECT sum(r.motorcycles) AS "Xe máy", sum(r.cars) AS "Ô tô con", sum(r.buses) AS "Xe buýt",
       sum(r.trucks) AS "Xe tải"
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE}""")

PER_LANE = SqlTarget(f"""
SELECT {INTERSECTION} AS "Nút giao", r.device_id AS "Bộ đếm", r.lane_id AS "Làn",
       sum(r.vehicles) AS "Số xe", sum(r.speed) / nullif(sum(r.n), 0) AS "Tốc độ TB (km/h)",
       sum(r.occupancy) / nullif(sum(r.n), 0) AS "Chiếm dụng", sum(r.congested)::float8 / nullif(sum(r.n), 0)
         AS "Tỉ lệ ùn tắc"
  FROM {SRC} r JOIN ioc.devices d USING (device_id)
 WHERE {PLACE}
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""")

SAME_WEEKDAY = SqlTarget(f"""
SELECT {bucket("r.t + k * interval '7 days'")}, {WEEK_LABEL} AS metric,
       sum(r.vehicles) * 3600 / {BUCKET_SECONDS} AS value
  FROM {WEEKS_SRC} r JOIN ioc.devices d USING (device_id)
 CROSS JOIN generate_series(0, {PREVIOUS_WEEKS}) k
 WHERE {PLACE} AND r.t + k * interval '7 days' BETWEEN $__timeFrom() AND $__timeTo()
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

CHANGE = SqlTarget(f"""
SELECT sum(v) FILTER (WHERE k = 0) / nullif(sum(v) FILTER (WHERE k > 0) / nullif(count(DISTINCT k) FILTER (WHERE k > 0
         AND v > 0), 0), 0) - 1 AS change
  FROM (SELECT k, sum(r.vehicles) AS v
          FROM {WEEKS_SRC} r JOIN ioc.devices d USING (device_id)
         CROSS JOIN generate_series(0, {PREVIOUS_WEEKS}) k
         WHERE {PLACE} AND r.t + k * interval '7 days' BETWEEN $__timeFrom() AND $__timeTo()
         GROUP BY k) per_week""")


def dashboard() -> Dashboard:
    return Dashboard(
        uid="ioc-traffic", title="Giao thông (ITS)", folder="linh-vuc",
        description="ITS counters: volume and speed per intersection and lane, congestion, vehicle classes, and "
                    "the range compared with the same weekday of the previous three weeks.",
        variables=[CITY, WARD],
        items=[
            timeseries("Lưu lượng theo nút giao", "Vehicles per hour counted on all lanes of each intersection.",
                       [VOLUME], unit="suffix: xe/h", decimals=0, thresholds=Thresholds(BLUE), width=12,
                       max_data_points=POINTS),
            timeseries("Tốc độ trung bình", "Mean vehicle speed per intersection, km/h; below 15 km/h is "
                                            "congested traffic in the city centre.", [SPEED],
                       unit="velocitykmh", decimals=0, thresholds=Thresholds(RED, ((15, ORANGE), (25, GREEN))),
                       width=12, max_data_points=POINTS),
            Row("So sánh cùng thứ các tuần trước"),
            timeseries("Lưu lượng so với cùng thứ các tuần trước", "Total vehicles per hour in the range and in the "
                                                                   "same range 1, 2 and 3 weeks earlier (same "
                                                                   "weekday and hours): rush hours and festivals "
                                                                   "stand out against ordinary weeks.",
                       [SAME_WEEKDAY], unit="suffix: xe/h", decimals=0, thresholds=Thresholds(BLUE), width=18,
                       max_data_points=POINTS),
            stat("Chênh lệch so với các tuần trước", "Vehicles counted in the range against the mean of the same "
                                                    "range in the previous weeks that have data.", [CHANGE],
                 unit="percentunit", decimals=0, thresholds=Thresholds(GREEN, ((0.2, YELLOW), (0.5, RED))),
                 width=6, height=9, max_data_points=POINTS),
            Row("Ùn tắc và thành phần xe"),
            bargauge("Tỉ lệ ùn tắc theo nút giao", "Share of lane readings flagged congested in the range.",
                     [CONGESTION], unit="percentunit", decimals=1, min=0, max=1, width=10, max_data_points=POINTS,
                     thresholds=Thresholds(GREEN, ((0.1, YELLOW), (0.25, RED)))),
            piechart("Thành phần phương tiện", "Vehicles by class counted in the range.", [CLASSES],
                     unit="none", decimals=0, thresholds=Thresholds(BLUE), width=6, max_data_points=POINTS),
            table("Theo làn", "Per counter and lane over the range: vehicles, mean speed, occupancy, congestion.",
                  [PER_LANE], unit="none", decimals=1, thresholds=Thresholds(GREEN), width=8, max_data_points=POINTS,
                  overrides=[{"matcher": {"id": "byName", "options": name},
                              "properties": [{"id": "unit", "value": "percentunit"}]}
                             for name in ("Chiếm dụng", "Tỉ lệ ùn tắc")]),
        ],
    )
