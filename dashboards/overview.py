"""Tổng quan (IOC overview): what needs attention on a map, device health, active alerts, headline KPIs."""

from __future__ import annotations

from dashboards.builder import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Dashboard,
    PromTarget,
    Row,
    SqlTarget,
    Thresholds,
)
from dashboards.environment import AQI_THRESHOLDS, RIVER_THRESHOLDS
from dashboards.panels import geomap, marker_layer, stat, table
from dashboards.sql import CITY, CITY_FILTER, END, FAMILY, FAMILY_FILTER, METER_USE, PLACE, SILENT, WARD

CENTRE = (21.386, 103.017)  # Điện Biên Phủ (DESIGN §2)
# Attention items are counted per ~280 m × 260 m cell (1/400 degree): a wall map stays readable at city scale
# and a full city's 40 000 devices never become 40 000 markers.
CELL = 400

ATTENTION = SqlTarget(f"""
WITH recent_alarms AS (
  SELECT DISTINCT device_id FROM ioc.device_events
   WHERE severity <> 'info' AND time > {END} - interval '1 hour' AND time <= {END}
), attention AS (
  SELECT d.lat, d.lon, d.family,
         CASE WHEN s.status = 'offline' THEN 'offline' WHEN {SILENT} THEN 'silent' ELSE 'alarm' END AS why
    FROM ioc.devices d
    LEFT JOIN ioc.device_state s USING (device_id)
    LEFT JOIN recent_alarms a USING (device_id)
   WHERE {PLACE} AND {FAMILY_FILTER} AND d.family <> 'gateway' AND d.lat IS NOT NULL
     AND (s.status = 'offline' OR {SILENT} OR a.device_id IS NOT NULL)
)
SELECT round(lat * {CELL}) / {CELL} AS latitude, round(lon * {CELL}) / {CELL} AS longitude, count(*) AS items,
       string_agg(DISTINCT family || ' ' || why, ', ') AS detail
  FROM attention GROUP BY 1, 2 ORDER BY items DESC""")

WARD_AGGREGATES = SqlTarget(f"""
SELECT d.ward, avg(d.lat) AS latitude, avg(d.lon) AS longitude, count(*) AS devices,
       avg(coalesce(s.status = 'online', false)::int) AS online_ratio,
       count(*) FILTER (WHERE s.status = 'offline' OR {SILENT}) AS attention
  FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
 WHERE {PLACE} AND {FAMILY_FILTER} AND d.family <> 'gateway' AND d.ward IS NOT NULL AND d.lat IS NOT NULL
 GROUP BY d.ward ORDER BY d.ward""")

PER_FAMILY_WARD = SqlTarget(f"""
SELECT d.family AS "Lĩnh vực", coalesce(d.ward, '—') AS "Phường / xã", count(*) AS "Tổng",
       count(*) FILTER (WHERE s.status = 'online') AS "Trực tuyến",
       count(*) FILTER (WHERE s.status = 'offline') AS "Mất kết nối",
       count(*) FILTER (WHERE {SILENT}) AS "Im lặng",
       avg(coalesce(s.status = 'online', false)::int) AS "Tỉ lệ trực tuyến"
  FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
 WHERE {PLACE} AND {FAMILY_FILTER} AND d.family <> 'gateway'
 GROUP BY 1, 2 ORDER BY 1, 2""")

ONLINE_BY_FAMILY = SqlTarget(f"""
SELECT d.family, avg(coalesce(s.status = 'online' AND NOT {SILENT}, false)::int) AS online_ratio
  FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
 WHERE {PLACE} AND {FAMILY_FILTER} AND d.family <> 'gateway'
 GROUP BY 1 ORDER BY 1""")

LAMPS_WORKING = SqlTarget(f"""
SELECT avg(coalesce(l.lamp_status = 'ok' AND s.status = 'online', false)::int) AS lamps_working
  FROM ioc.devices d
  LEFT JOIN ioc.device_state s USING (device_id)
  LEFT JOIN LATERAL (
    SELECT r.lamp_status FROM ioc.lighting_readings r
     WHERE r.device_id = d.device_id AND r.time > {END} - interval '1 hour' AND r.time <= {END}
     ORDER BY r.time DESC LIMIT 1) l ON TRUE
 WHERE {PLACE} AND d.kind = 'streetlight'""")

WATER_USED = SqlTarget(f"""
SELECT coalesce(sum(m.used), 0) AS consumption_m3
  FROM {METER_USE} m JOIN ioc.devices d USING (device_id)
 WHERE {PLACE} AND d.kind = 'meter'""")

AQI_NOW = SqlTarget(f"""
SELECT max(greatest(ioc.vn_aqi('pm25', pm25), ioc.vn_aqi('pm10', pm10))) AS vn_aqi FROM (
  SELECT e.device_id, avg(e.pm25) AS pm25, avg(e.pm10) AS pm10
    FROM ioc.environment_readings e JOIN ioc.devices d USING (device_id)
   WHERE e.time > {END} - interval '24 hours' AND e.time <= {END} AND {PLACE} AND d.kind = 'air_quality'
   GROUP BY e.device_id) day_means""")

RIVER_NOW = SqlTarget(f"""
SELECT max(level) AS water_level_m FROM (
  SELECT DISTINCT ON (e.device_id) e.water_level_m AS level
    FROM ioc.environment_readings e JOIN ioc.devices d USING (device_id)
   WHERE {CITY_FILTER} AND d.kind = 'river_gauge' AND e.time > {END} - interval '1 hour' AND e.time <= {END}
   ORDER BY e.device_id, e.time DESC) latest""")

FRESHNESS = SqlTarget(f"""
SELECT extract(epoch FROM {END} - max(s.last_seen)) AS age_s
  FROM ioc.devices d JOIN ioc.device_state s USING (device_id)
 WHERE {PLACE} AND {FAMILY_FILTER}""")

ACTIVE_ALERTS = SqlTarget("""
SELECT a.starts_at AS "time", a.alertname AS "Cảnh báo", a.severity AS "Mức độ", a.area AS "Khu vực",
       a.ward AS "Phường / xã", a.annotations ->> 'summary' AS "Tóm tắt"
  FROM ioc.alerts a
 WHERE a.status = 'firing' AND (a.city = '$city' OR a.city IS NULL)
   AND ('__all' IN ($ward) OR a.ward IN ($ward) OR a.ward IS NULL)
 ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.starts_at DESC
 LIMIT 100""")

INGEST_RATE = PromTarget('sum(rate(ioc_ingest_messages_total[$__rate_interval]))', legend="messages/s")
# From the fleet exporter (services/fleet): areas (cabinets, DMAs) where most devices went silent at once, and
# tripped cabinets; "or vector(0)" shows 0, not "No data", while nothing is wrong.
SILENT_AREAS = PromTarget('count(ioc_fleet_area_silent_ratio{city="$city"} > 0.5) or vector(0)', legend="areas")
TRIPPED = PromTarget('sum(ioc_fleet_cabinet_tripped{city="$city"}) or vector(0)', legend="cabinets")

PCT_GOOD = Thresholds(RED, ((0.9, ORANGE), (0.98, GREEN)))


def dashboard() -> Dashboard:
    return Dashboard(
        uid="ioc-overview", title="Tổng quan IOC Điện Biên Phủ", folder="van-hanh",
        description="IOC overview: where devices need attention, device health per family and ward, active "
                    "alerts, ingest health and the city plan's headline KPIs.",
        variables=[CITY, WARD, FAMILY],
        items=[
            geomap("Bản đồ điểm cần chú ý",
                   "Devices that are offline, silent (nothing for 3 report intervals) or raised a warning/critical "
                   "event in the last hour, counted per ~280 m cell (red, size = count); blue: per-ward totals. "
                   "State at the end of the time range.",
                   [ATTENTION, WARD_AGGREGATES],
                   [marker_layer("Cần chú ý", "A", "items", "red", text_field="items"),
                    marker_layer("Phường / xã", "B", "devices", "blue", text_field="ward")],
                   unit="none", decimals=0, thresholds=Thresholds(GREEN, ((1, RED),)), centre=CENTRE, zoom=13,
                   width=14, height=16),
            table("Thiết bị theo lĩnh vực và phường",
                  "Registered devices per family and ward: online, offline (status message or gateway down), "
                  "silent, and the online share.", [PER_FAMILY_WARD], unit="none", decimals=0,
                  thresholds=Thresholds(GREEN), width=10, height=16, sort_by="Mất kết nối",
                  overrides=[{"matcher": {"id": "byName", "options": "Tỉ lệ trực tuyến"},
                              "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 1},
                                             {"id": "thresholds", "value": PCT_GOOD.to_json()},
                                             {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]),
            Row("Chỉ tiêu chính"),
            stat("Thiết bị hoạt động", "Share of devices online and not silent, per family.", [ONLINE_BY_FAMILY],
                 unit="percentunit", decimals=1, thresholds=PCT_GOOD, per_row=True, width=8),
            stat("Đèn hoạt động tốt", "Share of street lamps online whose newest reading (last hour) reports "
                                      "status ok. Plan target: 100 % of inner-city streets lit.", [LAMPS_WORKING],
                 unit="percentunit", decimals=1, thresholds=Thresholds(RED, ((0.95, ORANGE), (0.99, GREEN)))),
            stat("Nước tiêu thụ", "Water drawn through household meters in the time range (hourly rollup).",
                 [WATER_USED], unit="m3", decimals=0, thresholds=Thresholds(BLUE)),
            stat("VN_AQI cao nhất (24 giờ)", "Highest daily VN_AQI over the air stations, from the 24-hour mean "
                                             "PM2.5 and PM10 before the end of the range (QĐ 1459/QĐ-TCMT).",
                 [AQI_NOW], unit="none", decimals=0, thresholds=AQI_THRESHOLDS),
            stat("Mực nước Nậm Rốm", "Highest current level over the river gauges, against alarm levels I/II/III.",
                 [RIVER_NOW], unit="lengthm", decimals=2, thresholds=RIVER_THRESHOLDS),
            Row("Cảnh báo và tiếp nhận dữ liệu"),
            table("Cảnh báo đang hoạt động", "Firing alerts from the alert history (ioc.alerts), most severe "
                                             "first.", [ACTIVE_ALERTS], unit="none", decimals=0,
                  thresholds=Thresholds(GREEN), width=12, height=10),
            stat("Khu vực mất tín hiệu", "Cabinets and metered areas where more than half of the devices are "
                                         "silent now (fleet exporter): a feeder or gateway outage, not single "
                                         "devices.", [SILENT_AREAS], unit="none", decimals=0,
                 thresholds=Thresholds(GREEN, ((1, RED),)), height=5),
            stat("Tủ điện bị ngắt", "Lighting cabinets tripped now (fleet exporter).", [TRIPPED], unit="none",
                 decimals=0, thresholds=Thresholds(GREEN, ((1, RED),)), height=5),
            stat("Tốc độ tiếp nhận", "MQTT messages handled per second by all ingest workers (Prometheus).",
                 [INGEST_RATE], unit="suffix: msg/s", decimals=0, thresholds=Thresholds(BLUE), height=5),
            stat("Dữ liệu mới nhất", "Seconds since the newest message from any device of the selection "
                                     "arrived (ingest time), at the end of the range.", [FRESHNESS],
                 unit="s", decimals=0, thresholds=Thresholds(GREEN, ((120, ORANGE), (600, RED))), height=5),
        ],
    )

