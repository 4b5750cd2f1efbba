"""A database seeded with the simulated city for API tests: the fleet registered and a stretch of its readings
written through ingest's own decoder and writer (no broker: the MQTT path has its own tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ioc.db.connect import connect
from ioc.registry import Device, upsert_devices
from services.ingest.decode import DeviceInfo, decode
from services.ingest.writer import Writer
from simulators.generator import stream

# Messages per write: like an ingest batch.
BATCH = 2000


def register(dsn: str, fleet: Sequence[Device]) -> None:
    with connect(dsn) as conn:
        upsert_devices(conn, fleet)


def write_messages(dsn: str, fleet: Sequence[Device], messages: Sequence[tuple[str, bytes]],
                   now: datetime | None = None) -> None:
    """Decode and write (topic, payload) pairs as ingest would, in batches."""
    devices = {d.device_id: DeviceInfo(d.kind, d.family, d.city, d.gateway_id) for d in fleet}
    now = now or datetime.now(UTC)
    writer = Writer(dsn)
    try:
        for i in range(0, len(messages), BATCH):
            writer.write([decode(t, p, devices, now) for t, p in messages[i:i + BATCH]], now)
    finally:
        writer.close()


def seed(dsn: str, fleet: Sequence[Device], start: int, end: int, seed: int = 1) -> int:
    """Register ``fleet`` and write its simulated telemetry and events for [start, end) (epoch seconds);
    returns the number of messages written."""
    register(dsn, fleet)
    messages = [(m.topic, m.payload) for m in stream(fleet, seed, start, end, statuses=False)]
    write_messages(dsn, fleet, messages)
    return len(messages)
