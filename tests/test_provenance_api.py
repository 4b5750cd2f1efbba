"""The API's provenance filter on series: live + backfill by default for a real city, the sandbox's own readings
for a sandbox, any set on request (then from the raw table)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from ioc.registry import Device
from services.api.keys import create_key
from services.ingest.decode import DeviceInfo, decode
from services.ingest.writer import Writer
from testkit.apiserver import ApiServer
from testkit.feeds import register

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START, END = NOW - timedelta(hours=6), NOW + timedelta(minutes=1)


def _lamp(device_id: str, city: str, **metadata: str) -> Device:
    return Device(device_id=device_id, family="lighting", kind="streetlight", city=city, report_interval_s=600,
                  metadata=metadata)


@pytest.fixture
def api(database: str) -> Iterator[tuple[str, str]]:
    register(database, [_lamp("L1", "dien-bien-phu"), _lamp("SIM-L1", "sim-dien-bien-phu", provenance="replayed")])
    info = {"L1": DeviceInfo("streetlight", "lighting", "dien-bien-phu"),
            "SIM-L1": DeviceInfo("streetlight", "lighting", "sim-dien-bien-phu", provenance="replayed")}
    # L1: 3 readings in the last half hour (live), 2 hours-old ones (backfill); SIM-L1: the same times, replayed
    ages = [timedelta(minutes=m) for m in (5, 15, 25, 180, 240)]
    writer = Writer(database)
    try:
        messages = [decode(f"ioc/v1/{city}/lighting/{dev}/telemetry", json.dumps(
            [{"dateObserved": (NOW - age).isoformat(), "powerConsumption": 40.0} for age in ages]).encode(),
            info, NOW) for dev, city in (("L1", "dien-bien-phu"), ("SIM-L1", "sim-dien-bien-phu"))]
        writer.write(messages, NOW)
    finally:
        writer.close()
    with psycopg.connect(database) as conn:
        key = create_key(conn, "test-viewer", "viewer")[1]
    with ApiServer(database) as server:
        yield server.url, key


def _count(api: tuple[str, str], **params: Any) -> tuple[int, dict[str, Any]]:
    url, key = api
    r = httpx.get(f"{url}/v1/series", headers={"X-API-Key": key}, timeout=30, params={
        "metric": "power_w", "fn": "count", "interval": "1d", "tz": "UTC", "start": START.isoformat(),
        "end": END.isoformat(), **params})
    body: dict[str, Any] = r.json()
    assert r.status_code == 200, body
    return int(sum(p["value"] or 0 for p in body["points"])), body


def test_series_default_is_live_and_backfill_of_the_real_city(api: tuple[str, str]) -> None:
    n, body = _count(api, kind="streetlight")  # no city: real cities only
    assert n == 5 and body["provenance"] == ["live", "backfill"]
    assert _count(api, kind="streetlight", city="dien-bien-phu")[0] == 5
    assert _count(api, device="L1")[0] == 5
    n, body = _count(api, device="L1", provenance="live")
    assert n == 3 and body["provenance"] == ["live"] and body["source"] == "lighting_readings"
    assert _count(api, device="L1", provenance="backfill")[0] == 2
    assert _count(api, kind="streetlight", city="dien-bien-phu", provenance=["replayed", "simulated"])[0] == 0


def test_series_of_a_sandbox_returns_its_replayed_readings(api: tuple[str, str]) -> None:
    n, body = _count(api, device="SIM-L1")  # one named device: all its readings
    assert n == 5 and body["provenance"] == ["live", "backfill", "simulated", "replayed"]
    n, body = _count(api, kind="streetlight", city="sim-dien-bien-phu")
    assert n == 5 and body["provenance"] == ["simulated", "replayed"]
    assert _count(api, device="SIM-L1", provenance="live")[0] == 0
    url, key = api
    r = httpx.get(f"{url}/v1/series", headers={"X-API-Key": key}, timeout=30, params={
        "device": "L1", "metric": "power_w", "provenance": "staged", "start": START.isoformat(),
        "end": END.isoformat()})
    assert r.status_code == 422
