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
