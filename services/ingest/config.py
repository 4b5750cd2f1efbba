"""Ingest settings (``IOC_INGEST_*`` on top of the shared ``IOC_*`` ones)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from ioc.settings import CommonSettings
from services.ingest.decode import Limits


class IngestSettings(CommonSettings):
    # Worker number: the MQTT client id is ioc-ingest-<worker>. Keep it stable per worker, since the broker keeps
    # that worker's persistent session (and its queued messages) under this id.
    ingest_worker: Annotated[int, Field(ge=0, le=999)] = 0
    # Workers sharing this group split the stream (MQTT shared subscription); empty: a plain subscription.
    ingest_shared_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]*$")] = "ioc-ingest"
    # Flush when this many messages wait, or flush_interval after the first one: big enough to amortise a commit,
    # small enough to stay within the broker's in-flight window (max_inflight_messages 20000).
    ingest_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5_000
    # …or this many payload bytes: batched messages (gateways, back-fills) carry ~100 readings each, and one
    # transaction of ~25 000 rows keeps commit latency and the redelivery cost of a crash small.
    ingest_batch_bytes: Annotated[int, Field(ge=1024)] = 4 << 20
    ingest_flush_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 200
    # Stop reading from the broker beyond this many messages or bytes held unacknowledged (memory bound while the
    # database is slow or down; the broker queues the rest for our persistent session).
    ingest_max_pending: Annotated[int, Field(ge=100)] = 40_000
    ingest_max_pending_bytes: Annotated[int, Field(ge=1 << 20)] = 128 << 20
    ingest_max_payload_bytes: Annotated[int, Field(ge=1024, le=16 << 20)] = 256 << 10
    ingest_max_batch_readings: Annotated[int, Field(ge=1)] = 10_000
    ingest_max_future_s: Annotated[int, Field(ge=0)] = 300
    # Raw bytes kept per rejected message: enough to see what a device sent without storing floods of junk.
    ingest_reject_keep_bytes: Annotated[int, Field(ge=0, le=1 << 20)] = 4096
    ingest_keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    ingest_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9108  # 0: no HTTP endpoint
    ingest_metrics_host: str = "127.0.0.1"
    # On SIGTERM, how long to keep trying to commit what is pending before leaving it to redelivery.
    ingest_shutdown_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    # /health turns unhealthy ("stalled") when the oldest unacknowledged message is older than this: far above a
    # normal commit (well under a second) or a burst's queueing (seconds), well below what an operator must see.
    ingest_stall_after_s: Annotated[float, Field(gt=0)] = 60.0
    # Retention of ingest's bookkeeping tables (plain PostgreSQL; on TimescaleDB, device_events and
    # device_status_changes follow the policies of migration 0006 instead). 0 days: keep forever.
    ingest_rejected_retention_days: Annotated[int, Field(ge=0)] = 30  # enough to investigate a device's bad month
    ingest_events_retention_days: Annotated[int, Field(ge=0)] = 400  # like raw readings: compare with last year
    ingest_status_retention_days: Annotated[int, Field(ge=0)] = 400
    # How often the clean-up runs (0: never, e.g. when a DBA job does it).
    ingest_retention_interval_s: Annotated[int, Field(ge=0)] = 3600

    @property
    def client_id(self) -> str:
        return f"ioc-ingest-{self.ingest_worker}"

    @property
    def retention(self) -> dict[str, timedelta]:
        days = {"rejected_messages": self.ingest_rejected_retention_days,
                "device_events": self.ingest_events_retention_days,
                "device_status_changes": self.ingest_status_retention_days}
        return {table: timedelta(days=n) for table, n in days.items() if n}

    @property
    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.ingest_max_payload_bytes,
            max_batch_readings=self.ingest_max_batch_readings,
            max_future=timedelta(seconds=self.ingest_max_future_s),
        )
