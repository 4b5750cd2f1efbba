"""Nền tảng (platform): ingest rate, rejects by reason, lag, unacknowledged backlog, commit latency,
database size and compression ratio, API latency."""

from __future__ import annotations

from dashboards.builder import BLUE, GREEN, ORANGE, RED, YELLOW, Dashboard, PromTarget, Row, SqlTarget, Thresholds
from dashboards.panels import stat, table, timeseries
from dashboards.sql import END, FAMILY

RATE = "$__rate_interval"

MESSAGES = PromTarget(f"sum by (result) (rate(ioc_ingest_messages_total[{RATE}]))", legend="{{result}}")
ROWS = PromTarget(f"sum by (table) (rate(ioc_ingest_rows_written_total[{RATE}]))", legend="{{table}}")
REJECTS = PromTarget(f"sum by (reason) (rate(ioc_ingest_rejected_total[{RATE}]))", legend="{{reason}}")
PENDING = PromTarget("sum(ioc_ingest_pending_messages)", legend="chưa xác nhận")
OLDEST = PromTarget("max(ioc_ingest_oldest_unacked_age_seconds)", legend="tin cũ nhất chưa xác nhận")
SINCE_COMMIT = PromTarget("time() - max(ioc_ingest_last_commit_timestamp_seconds)", legend="từ lần ghi cuối")
COMMIT = [PromTarget(f"histogram_quantile({q}, sum by (le) (rate(ioc_ingest_commit_seconds_bucket[{RATE}])))",
                     legend=f"p{round(q * 100)}") for q in (0.5, 0.99)]
UP = PromTarget("min(ioc_ingest_db_up) * min(ioc_ingest_mqtt_connected)", legend="ingest")
FLEET = [PromTarget("max(ioc_fleet_snapshot_duration_seconds)", legend="truy vấn"),
         PromTarget("time() - max(ioc_fleet_snapshot_timestamp_seconds)", legend="tuổi ảnh chụp")]
API = [PromTarget(f"histogram_quantile({q}, sum by (le) (rate(ioc_api_request_duration_seconds_bucket[{RATE}])))",
                  legend=f"p{round(q * 100)}") for q in (0.5, 0.95)]

FAMILY_TABLES = {"lighting": ("lighting_readings", "cabinet_readings"), "water": ("water_readings",),
                 "traffic": ("traffic_readings",), "environment": ("environment_readings",)}
# Ingest lag (ingest time − device time) over the last 15 minutes of the range: recent rows only, so the
# time index bounds the scan whatever the range.
LAG = SqlTarget("SELECT family AS \"Lĩnh vực\", percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS \"p50\",\n"
                "       percentile_cont(0.95) WITHIN GROUP (ORDER BY lag) AS \"p95\", max(lag) AS \"max\"\n"
                "  FROM (\n" + "\n  UNION ALL\n".join(
                    f"  SELECT '{family}' AS family, extract(epoch FROM ingest_time - time) AS lag FROM ioc.{t}\n"
                    f"   WHERE time > {END} - interval '15 minutes' AND time <= {END}\n"
                    f"     AND ('__all' IN ($family) OR '{family}' IN ($family))"
                    for family, tables in FAMILY_TABLES.items() for t in tables)
                + ") lags\n GROUP BY 1 ORDER BY 1")

REJECTS_SQL = SqlTarget("""
SELECT $__timeGroupAlias(received_at, $__interval), reason AS metric, count(*) AS value
  FROM ioc.rejected_messages
 WHERE $__timeFilter(received_at)
 GROUP BY 1, 2 ORDER BY 1""", format="time_series")

REJECT_REASONS = SqlTarget("""
SELECT reason AS "Lý do", count(*) AS "Số tin", max(received_at) AS "Gần nhất", min(detail) AS "Ví dụ"
  FROM ioc.rejected_messages
 WHERE $__timeFilter(received_at)
 GROUP BY 1 ORDER BY 2 DESC""")

DB_SIZE = SqlTarget("SELECT pg_database_size(current_database()) AS bytes")
COMPRESSION = SqlTarget("""
SELECT sum(uncompressed_bytes)::float8 / nullif(sum(stored_bytes), 0) AS ratio FROM ioc.storage_stats()""")
STORAGE = SqlTarget("""
SELECT relation AS "Bảng", stored_bytes AS "Dung lượng", uncompressed_bytes AS "Chưa nén",
       uncompressed_bytes::float8 / nullif(stored_bytes, 0) AS "Tỉ lệ nén"
  FROM ioc.storage_stats() ORDER BY stored_bytes DESC""")

LATENCY = Thresholds(GREEN, ((0.25, YELLOW), (1, RED)), show="line")


def dashboard() -> Dashboard:
    return Dashboard(
        uid="ioc-platform", title="Nền tảng IOC", folder="nen-tang",
        description="Platform health: ingest throughput, rejects, lag and backlog, commit latency, database size "
                    "and compression, API latency.",
        variables=[FAMILY], time_from="now-6h",
        items=[
            timeseries("Tốc độ tiếp nhận", "MQTT messages handled per second by result (stored, rejected, "
                                           "status), all workers.", [MESSAGES], unit="suffix: msg/s", decimals=1,
                       thresholds=Thresholds(BLUE), width=8, stack=True),
            timeseries("Số dòng ghi", "Rows committed per second by table.", [ROWS], unit="suffix: rows/s",
                       decimals=0, thresholds=Thresholds(BLUE), width=8, stack=True),
            stat("Kết nối", "1 when every ingest worker is connected to the broker and its last database "
                            "operation succeeded.", [UP], unit="bool_on_off", decimals=0,
                 thresholds=Thresholds(RED, ((1, GREEN),)), width=4, height=8),
            stat("Từ lần ghi cuối", "Seconds since the newest committed batch (any worker).", [SINCE_COMMIT],
                 unit="s", decimals=0, thresholds=Thresholds(GREEN, ((60, ORANGE), (300, RED))), width=4,
                 height=8),
            Row("Từ chối"),
            timeseries("Tin bị từ chối theo lý do", "Rejected messages or readings per second by reason (ingest "
                                                    "counters).", [REJECTS], unit="suffix: msg/s", decimals=2,
                       thresholds=Thresholds(GREEN, ((0.1, ORANGE),)), width=8, stack=True),
            timeseries("Tin bị từ chối (cơ sở dữ liệu)", "Rejected messages stored in ioc.rejected_messages per "
                                                         "interval, by reason.", [REJECTS_SQL], unit="none",
                       decimals=0, thresholds=Thresholds(GREEN, ((1, ORANGE),)), bars=True, stack=True, width=8),
            table("Lý do từ chối", "Rejected messages in the range by reason, with one example of the detail "
                                   "given to the integrator.", [REJECT_REASONS], unit="none", decimals=0,
                  thresholds=Thresholds(GREEN, ((1, ORANGE),)), width=8),
            Row("Độ trễ và tồn đọng"),
            table("Độ trễ tiếp nhận", "Ingest time minus device time per family over the last 15 minutes of "
                                      "the range, seconds (back-filled readings raise the max).", [LAG],
                  unit="s", decimals=1, thresholds=Thresholds(GREEN, ((30, ORANGE), (300, RED))), width=8),
            timeseries("Tồn đọng chưa xác nhận", "Messages received and not yet acknowledged (left axis) and the "
                                                 "age of the oldest (s).", [PENDING, OLDEST], unit="none",
                       decimals=0, thresholds=Thresholds(GREEN, ((10000, ORANGE), (40000, RED))), width=8,
                       overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                                   "properties": [{"id": "unit", "value": "s"},
                                                  {"id": "custom.axisPlacement", "value": "right"}]}]),
            timeseries("Thời gian ghi một lô", "Time to write and commit one batch, median and 99th percentile.",
                       COMMIT, unit="s", decimals=3, thresholds=LATENCY, width=8),
            Row("Cơ sở dữ liệu và API"),
            stat("Dung lượng cơ sở dữ liệu", "Size of the IOC database on disk.", [DB_SIZE], unit="bytes",
                 decimals=1, thresholds=Thresholds(GREEN, ((200e9, ORANGE), (400e9, RED))), height=8),
            stat("Tỉ lệ nén", "Reading tables: size they would take uncompressed over the size they take "
                              "(TimescaleDB compression; 1 on plain PostgreSQL).", [COMPRESSION], unit="none",
                 decimals=1, thresholds=Thresholds(BLUE), height=8),
            table("Dung lượng theo bảng", "Per reading table: bytes stored, bytes before compression, ratio.",
                  [STORAGE], unit="bytes", decimals=1, thresholds=Thresholds(GREEN), width=8, height=8,
                  overrides=[{"matcher": {"id": "byName", "options": "Tỉ lệ nén"},
                              "properties": [{"id": "unit", "value": "none"}]}]),
            timeseries("Độ trễ API", "API response time, median and 95th percentile (services/api).", API,
                       unit="s", decimals=3, thresholds=LATENCY, width=8, height=8),
            timeseries("Bộ xuất trạng thái thiết bị", "Fleet exporter: duration of its snapshot query and age of "
                                                     "the last successful snapshot, seconds.", FLEET, unit="s",
                       decimals=2, thresholds=Thresholds(GREEN, ((5, ORANGE), (30, RED)), show="line"), width=16,
                       height=8),
        ],
    )
