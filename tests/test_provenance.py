"""Provenance of stored readings (live / backfill / simulated / replayed) and the raw-retention limit
(``beyond_retention``): the pure rules, then through the real ingest on both storage paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ioc.provenance import RAW_RETENTION, device_provenance, sandbox_city, sandbox_device_id
from ioc.registry import Device
from services.ingest.decode import DeviceInfo, Limits, decode
from testkit.broker import MosquittoBroker
from testkit.feeds import count, register, wait_for
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DEVICES = {
    "LAMP1": DeviceInfo("streetlight", "lighting", "dien-bien-phu"),
    "SIM-LAMP1": DeviceInfo("streetlight", "lighting", "sim-dien-bien-phu", provenance="replayed"),
    "SIM-LAMP2": DeviceInfo("streetlight", "lighting", "sim-dien-bien-phu", provenance="simulated"),
}


def _topic(device_id: str) -> str:
    city = DEVICES[device_id].city
    return f"ioc/v1/{city}/lighting/{device_id}/telemetry"


def _reading(when: datetime) -> dict[str, Any]:
    return {"dateObserved": when.isoformat(), "powerState": "on", "powerConsumption": 40.0}


def _provenances(device_id: str, *ages: timedelta) -> list[Any]:
    payload = json.dumps([_reading(NOW - age) for age in ages]).encode()
    out = decode(_topic(device_id), payload, DEVICES, NOW)
    assert not out.rejections
    return [row[-1] for row in out.rows]


def test_live_device_readings_are_live_when_recent_and_backfill_when_late() -> None:
    assert _provenances("LAMP1", timedelta(0), timedelta(minutes=59), timedelta(minutes=61), timedelta(days=30)) == [
        "live", "live", "backfill", "backfill"]


def test_sandbox_device_readings_keep_the_sandbox_provenance_whatever_their_age() -> None:
    assert _provenances("SIM-LAMP1", timedelta(0), timedelta(days=30)) == ["replayed", "replayed"]
    assert _provenances("SIM-LAMP2", timedelta(0), timedelta(days=30)) == ["simulated", "simulated"]


def test_registry_metadata_cannot_make_a_real_city_device_look_simulated() -> None:
    assert device_provenance("dien-bien-phu", "replayed") == "live"
    assert device_provenance("sim-dien-bien-phu", "replayed") == "replayed"
    assert device_provenance("sim-dien-bien-phu", None) == "simulated"
    assert device_provenance("sim-dien-bien-phu", "live") == "simulated"  # a sandbox is never live
    assert sandbox_city("dien-bien-phu") == sandbox_city("sim-dien-bien-phu") == "sim-dien-bien-phu"
    assert sandbox_device_id("LAMP1") == sandbox_device_id("SIM-LAMP1") == "SIM-LAMP1"


def test_readings_beyond_the_raw_retention_are_rejected_one_by_one() -> None:
    assert Limits().max_age == RAW_RETENTION == timedelta(days=400)
    ages = [timedelta(days=399), RAW_RETENTION + timedelta(minutes=1), timedelta(days=900)]
    payload = json.dumps([_reading(NOW - age) for age in ages]).encode()
    out = decode(_topic("LAMP1"), payload, DEVICES, NOW)
    assert len(out.rows) == 1 and out.rows[0][-1] == "backfill"
    assert [r.reason for r in out.rejections] == ["beyond_retention", "beyond_retention"]
    assert "400 days" in out.rejections[0].detail and out.rejections[0].detail.startswith("reading 1:")
    # single readings and events too
    one = decode(_topic("LAMP1"), json.dumps(_reading(NOW - timedelta(days=401))).encode(), DEVICES, NOW)
    event = decode("ioc/v1/dien-bien-phu/lighting/LAMP1/event", json.dumps(
        {"dateObserved": (NOW - timedelta(days=401)).isoformat(), "eventType": "lampFailure",
         "severity": "warning"}).encode(), DEVICES, NOW)
    assert [r.reason for r in one.rejections + event.rejections] == ["beyond_retention"] * 2
    # the limit is a decode setting like the future one
    assert len(decode(_topic("LAMP1"), json.dumps(_reading(NOW - timedelta(days=401))).encode(), DEVICES, NOW,
                      Limits(max_age=timedelta(days=500))).rows) == 1


def _lamp(device_id: str, city: str, **metadata: str) -> Device:
    return Device(device_id=device_id, family="lighting", kind="streetlight", city=city, report_interval_s=600,
                  metadata=metadata)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_ingest_stores_provenance_and_refuses_beyond_retention(database: str, storage: str,
                                                               broker: MosquittoBroker) -> None:
    register(database, [_lamp("LAMP1", "dien-bien-phu", provenance="replayed"),  # ignored outside a sandbox
                        _lamp("SIM-LAMP1", "sim-dien-bien-phu", provenance="replayed"),
                        _lamp("SIM-LAMP2", "sim-dien-bien-phu")])
    now = datetime.now(UTC)
    ages = [timedelta(minutes=1), timedelta(hours=3), RAW_RETENTION + timedelta(hours=1)]
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            for device_id, city in (("LAMP1", "dien-bien-phu"), ("SIM-LAMP1", "sim-dien-bien-phu"),
                                    ("SIM-LAMP2", "sim-dien-bien-phu")):
                batch = [_reading(now - age) for age in ages]
                pub.publish(f"ioc/v1/{city}/lighting/{device_id}/telemetry", json.dumps(batch).encode())
            pub.flush()
        assert wait_for(database, "SELECT count(*) FROM ioc.rejected_messages", 3) == 3
        assert count(database, "SELECT count(*) FROM ioc.lighting_readings") == 6
        assert ingest.stop() == 0
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT device_id, provenance FROM ioc.lighting_readings ORDER BY device_id, time DESC"
                            ).fetchall()
        reasons = conn.execute("SELECT DISTINCT reason FROM ioc.rejected_messages").fetchall()
        if storage == "timescaledb":  # the policy that would delete older rows is the limit ingest applies
            drops = conn.execute("""SELECT DISTINCT (config->>'drop_after')::interval
                                    FROM timescaledb_information.jobs
                                    WHERE proc_name = 'policy_retention' AND hypertable_name LIKE '%_readings'""")
            assert drops.fetchall() == [(RAW_RETENTION,)]
    assert rows == [("LAMP1", "live"), ("LAMP1", "backfill"), ("SIM-LAMP1", "replayed"), ("SIM-LAMP1", "replayed"),
                    ("SIM-LAMP2", "simulated"), ("SIM-LAMP2", "simulated")]
    assert reasons == [("beyond_retention",)]
