"""Ingest self-metrics, defined once. Names follow Prometheus conventions."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("ioc_ingest_messages_total", "MQTT messages handled, by result", ["result"])
ROWS = Counter("ioc_ingest_rows_written_total", "Rows committed, by table", ["table"])
DUPLICATES = Counter("ioc_ingest_duplicate_rows_total", "Rows already stored (redelivery, replay), by table",
                     ["table"])
REJECTS = Counter("ioc_ingest_rejected_total", "Rejected messages or readings, by reason", ["reason"])
STATUS_CHANGES = Counter("ioc_ingest_status_messages_total", "Status messages, by status", ["status"])
DB_ERRORS = Counter("ioc_ingest_db_errors_total", "Database errors, by kind (transient: nothing acknowledged, "
                    "retried; permanent: one message's data, stored as a storage_error rejection) and error class "
                    "(services/ingest/dberrors.py)", ["kind", "error"])
MQTT_CONNECTS = Counter("ioc_ingest_mqtt_connects_total", "MQTT (re)connections")
MQTT_SESSIONS_LOST = Counter("ioc_ingest_mqtt_sessions_lost_total",
                             "Reconnects where the broker kept no session (queued messages may be lost)")
STAGE_UP = Gauge("ioc_ingest_stage_up", "1 while the pipeline stage runs", ["stage"])
RETENTION_DELETED = Counter("ioc_ingest_retention_deleted_rows_total", "Rows removed by ingest's retention clean-up",
                            ["table"])
BATCH_MESSAGES = Histogram("ioc_ingest_batch_messages", "Messages per committed batch",
                           buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000))
COMMIT_SECONDS = Histogram("ioc_ingest_commit_seconds", "Time to write and commit one batch",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
PENDING = Gauge("ioc_ingest_pending_messages", "Messages received and not yet acknowledged")
OLDEST_UNACKED = Gauge("ioc_ingest_oldest_unacked_age_seconds", "Age of the oldest unacknowledged message")
MQTT_CONNECTED = Gauge("ioc_ingest_mqtt_connected", "1 while connected to the broker")
DB_UP = Gauge("ioc_ingest_db_up", "1 while the last database operation succeeded")
LAST_COMMIT = Gauge("ioc_ingest_last_commit_timestamp_seconds", "Unix time of the last committed batch")
