"""Payload builders shared by the ingest tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ioc.registry import Device, upsert_devices

CITY = "dien-bien-phu"
T0 = datetime(2026, 3, 14, 11, 0, tzinfo=UTC)


def lamps(count: int, prefix: str = "LAMP") -> list[Device]:
    return [Device(device_id=f"{prefix}{i:04d}", family="lighting", kind="streetlight", city=CITY,
                   ward="Mường Thanh", site="Võ Nguyên Giáp", lat=21.386, lon=103.017, report_interval_s=600)
            for i in range(count)]


def register(dsn: str, devices: list[Device]) -> None:
    with psycopg.connect(dsn) as conn:
        upsert_devices(conn, devices)


def topic(device_id: str, family: str = "lighting", channel: str = "telemetry") -> str:
    return f"ioc/v1/{CITY}/{family}/{device_id}/{channel}"


def lamp_reading(i: int, minutes: int) -> dict[str, Any]:
    when = T0 + timedelta(minutes=minutes)
    # alternate the two accepted time forms
    stamp: Any = when.isoformat() if i % 2 else int(when.timestamp() * 1000)
    return {"dateObserved": stamp, "powerState": "on", "illuminanceLevel": 0.7, "powerConsumption": 40.0 + i % 9,
            "voltage": 229.0, "current": 0.2, "energyConsumed": 100.0 + minutes / 60, "status": "ok"}


def lamp_feed(devices: list[Device], per_device: int) -> list[tuple[str, bytes]]:
    """One reading per message, devices interleaved; reading k of a device is k minutes after T0."""
    return [(topic(d.device_id), json.dumps(lamp_reading(n, k)).encode())
            for k in range(per_device) for n, d in enumerate(devices)]


def count(dsn: str, query: str, *params: Any) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def wait_for(dsn: str, query: str, expected: Any, timeout: float = 60, *params: Any) -> Any:
    import time

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = count(dsn, query, *params)
        if value == expected:
            return value
        time.sleep(0.2)
    return value


# Bad payloads, one per rejection reason, each published on a registered lamp's topic unless noted.
BAD_INPUTS: list[tuple[str, str, bytes]] = [
    # (expected reason, topic device, payload)
    ("invalid_json", "LAMP0001", b"lamp is on"),
    ("wrong_type", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "voltage": "229"}'),
    ("missing_field", "LAMP0001", b'{"powerState": "on"}'),
    ("non_finite_number", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "powerConsumption": NaN}'),
    ("unknown_device", "GHOST999", b'{"dateObserved": "2026-03-14T18:00:00+07:00"}'),
    ("device_mismatch", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "deviceId": "LAMP0002"}'),
    ("future_timestamp", "LAMP0001", b'{"dateObserved": "2099-01-01T00:00:00+07:00"}'),
    ("oversize", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "x": "' + b"a" * 300_000 + b'"}'),
    ("empty_batch", "LAMP0001", b"[]"),
    ("too_deeply_nested", "LAMP0001", b'{"a":' * 40 + b"1" + b"}" * 40),
    ("bad_encoding", "LAMP0001", '{"dateObserved": "2026-03-14T18:00:00+07:00", "status": "hỏng"}'.encode("utf-16")),
    ("unexpected_field", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "powerConsuption": 5}'),
    ("out_of_range", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "illuminanceLevel": 1.5}'),
    ("invalid_timestamp", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00"}'),
    ("invalid_value", "LAMP0001", b'{"dateObserved": "2026-03-14T18:00:00+07:00", "powerState": "dim"}'),
]

