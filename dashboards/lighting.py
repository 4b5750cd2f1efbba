"""Chiếu sáng (street lighting): lamp states by ward and cabinet, dark lamps at night, energy, dimming, and
the share of smart / energy-saving lighting against the plan's 35 % target."""

from __future__ import annotations

from dashboards.builder import BLUE, GREEN, ORANGE, RED, YELLOW, Dashboard, Row, SqlTarget, Thresholds
from dashboards.panels import gauge, stat, table, timeseries
from dashboards.sql import CITY, END, LIGHTING_WARD, PLACE, WARD, WARD_ROWS, bucket, local, tiered

SMART_TARGET = 0.35  # ≥ 35 % of roads on smart / energy-saving / renewable lighting (DESIGN §2)
# Night for the "dark at night" panels: 19–05 h local keeps clear of the dusk and dawn switching
# (Điện Biên Phủ dusk ≈ 18:00–18:45, dawn ≈ 05:30–06:30 over the year).
NIGHT = "(extract(hour FROM {t}) >= 19 OR extract(hour FROM {t}) < 5)"

LATEST = f"""LEFT JOIN LATERAL (
    SELECT r.device_id, r.power_state, r.lamp_status FROM ioc.lighting_readings r
     WHERE r.device_id = d.device_id AND r.time > {END} - interval '1 hour' AND r.time <= {END}
     ORDER BY r.time DESC LIMIT 1) l ON TRUE"""

STATES = SqlTarget(f"""
SELECT count(*) FILTER (WHERE l.power_state IN ('on', 'low') AND l.lamp_status = 'ok') AS "Đang sáng",
       count(*) FILTER (WHERE l.power_state = 'off' AND l.lamp_status = 'ok') AS "Đang tắt",
       count(*) FILTER (WHERE l.lamp_status <> 'ok') AS "Hỏng",
       count(*) FILTER (WHERE l.device_id IS NULL) AS "Không có dữ liệu"
  FROM ioc.devices d {LATEST}
 WHERE {PLACE} AND d.kind = 'streetlight'""")

BY_CABINET = SqlTarget(f"""
SELECT d.parent_id AS "Tủ điện", d.ward AS "Phường / xã", min(d.site) AS "Tuyến đường", count(*) AS "Số đèn",
       count(*) FILTER (WHERE l.power_state IN ('on', 'low') AND l.lamp_status = 'ok') AS "Đang sáng",
       count(*) FILTER (WHERE l.power_state = 'off' AND l.lamp_status = 'ok') AS "Đang tắt",
       count(*) FILTER (WHERE l.lamp_status <> 'ok') AS "Hỏng",
       count(*) FILTER (WHERE l.device_id IS NULL) AS "Không có dữ liệu"
  FROM ioc.devices d {LATEST}
 WHERE {PLACE} AND d.kind = 'streetlight'
 GROUP BY 1, 2 ORDER BY "Hỏng" DESC, "Không có dữ liệu" DESC, 1""")

DARK_NOW = SqlTarget(f"""
SELECT count(*) FILTER (WHERE {NIGHT.format(t=local(END))}
                          AND (l.device_id IS NULL OR l.power_state = 'off' OR l.lamp_status <> 'ok')) AS dark_lamps
  FROM ioc.devices d {LATEST}
 WHERE {PLACE} AND d.kind = 'streetlight'""")

# Per-ward rollups (15 000 lamps → a few rows per bucket). 100 points per panel: 15-minute buckets over a day,
# the lamps' own report interval, so a 24-hour panel reads the 15-minute rollup.
SRC = tiered(LIGHTING_WARD)
LAMP_POINTS = 100
DARK_SHARE = SqlTarget(f"""
SELECT {bucket()}, coalesce(r.ward, '—') AS metric,
       sum(r.n - r.lit) FILTER (WHERE {NIGHT.format(t=local('r.t'))})::float8
         / nullif(sum(r.n) FILTER (WHERE {NIGHT.format(t=local('r.t'))}), 0) AS value
  FROM {SRC} r
 WHERE {WARD_ROWS}
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

DIMMING = SqlTarget(f"""
SELECT {bucket()}, sum(r.illuminance) / nullif(sum(r.n), 0) AS "Mức sáng trung bình",
       sum(r.lit)::float8 / nullif(sum(r.n), 0) AS "Tỉ lệ đèn sáng"
  FROM {SRC} r
 WHERE {WARD_ROWS}
 GROUP BY 1 ORDER BY 1""", format="time_series")

POWER = SqlTarget(f"""
SELECT {bucket()}, sum(r.power_w) / nullif(sum(r.n), 0) AS "Công suất trung bình / đèn"
  FROM {SRC} r
 WHERE {WARD_ROWS}
 GROUP BY 1 ORDER BY 1""", format="time_series")

# Cabinet meters measure what the feeders really draw; per local day from the hourly rollup.
ENERGY_PER_DAY = SqlTarget(f"""
SELECT day AT TIME ZONE 'Asia/Ho_Chi_Minh' AS "time", sum(used) AS "Điện năng" FROM (
  SELECT c.device_id, date_trunc('day', {local('c.bucket')}) AS day,
         max(c.max_energy_kwh) - min(c.min_energy_kwh) AS used
    FROM ioc.cabinet_1h c JOIN ioc.devices d USING (device_id)
   WHERE $__timeFilter(c.bucket) AND {PLACE} AND d.kind = 'cabinet'
   GROUP BY 1, 2) per_cabinet
 GROUP BY 1 ORDER BY 1""", format="time_series")

SMART_SHARE = SqlTarget(f"""
SELECT avg((d.metadata ->> 'lamp_type' IN ('led-smart', 'solar'))::int) AS "Thông minh + năng lượng mặt trời",
       avg((d.metadata ->> 'lamp_type' IN ('led-smart', 'solar', 'led'))::int) AS "Tiết kiệm năng lượng (gồm LED)"
  FROM ioc.devices d
 WHERE {PLACE} AND d.kind = 'streetlight'""")


def dashboard() -> Dashboard:
    return Dashboard(
        uid="ioc-lighting", title="Chiếu sáng công cộng", folder="linh-vuc",
        description="Street lighting: lamp states by ward and cabinet, lamps dark at night, energy per day, "
                    "dimming, and the share of smart / energy-saving lighting against the 35 % target.",
        variables=[CITY, WARD],
        items=[
            stat("Trạng thái đèn", "Lamps by their newest reading in the last hour of the range: lit, "
                                   "switched off, faulty (status not ok), no reading.", [STATES], unit="none",
                 decimals=0, thresholds=Thresholds(BLUE), width=10,
                 overrides=[{"matcher": {"id": "byName", "options": "Hỏng"},
                             "properties": [{"id": "thresholds", "value": Thresholds(GREEN, ((1, RED),)).to_json()}]},
                            {"matcher": {"id": "byName", "options": "Không có dữ liệu"},
                             "properties": [{"id": "thresholds",
                                             "value": Thresholds(GREEN, ((1, ORANGE),)).to_json()}]}]),
            stat("Đèn không sáng ban đêm", "At night (19–05 h local) at the end of the range: lamps that are "
                                           "off, faulty or silent. 0 by day.", [DARK_NOW], unit="none",
                 decimals=0, thresholds=Thresholds(GREEN, ((1, ORANGE), (20, RED))), width=4),
            gauge("Tỉ lệ chiếu sáng thông minh / tiết kiệm", "Share of registered lamps that are smart LED or solar, "
                                                             "and including plain LED; the plan targets ≥ 35 %.",
                  [SMART_SHARE], unit="percentunit", decimals=0, min=0, max=1, width=10, height=5,
                  thresholds=Thresholds(RED, ((SMART_TARGET, GREEN),))),
            Row("Theo thời gian"),
            timeseries("Tỉ lệ đèn tắt ban đêm", "Per ward, the share of night-time readings (19–05 h local) that "
                                                "report the lamp not lit. Gaps by day.", [DARK_SHARE],
                       unit="percentunit", decimals=1, thresholds=Thresholds(GREEN, ((0.02, ORANGE), (0.1, RED))),
                       min=0, max=1, max_data_points=LAMP_POINTS),
            timeseries("Điều chỉnh độ sáng", "Mean dimming level (illuminance 0–1) and share of lit readings.",
                       [DIMMING], unit="percentunit", decimals=0, thresholds=Thresholds(BLUE), min=0, max=1,
                       max_data_points=LAMP_POINTS),
            timeseries("Công suất trung bình mỗi đèn", "Mean power per lamp reading, W.", [POWER], unit="watt",
                       decimals=0, thresholds=Thresholds(BLUE), max_data_points=LAMP_POINTS),
            timeseries("Điện năng theo ngày", "Energy metered by the lighting cabinets per local day, kWh (hourly "
                                              "rollup; a partial day at each end of the range).", [ENERGY_PER_DAY],
                       unit="kwatth", decimals=0, thresholds=Thresholds(BLUE), bars=True, width=12,
                       interval="1d"),
            table("Theo tủ điện", "Lamps per cabinet by their newest reading in the last hour of the range, "
                                  "faulty first.", [BY_CABINET], unit="none", decimals=0,
                  thresholds=Thresholds(GREEN, ((1, YELLOW),)), width=12),
        ],
    )
