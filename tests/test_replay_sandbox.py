"""A replay into a sandbox next to a live simulated city, through a real broker, ingest and database: the live
devices' retained statuses and device_state stay as they were, the replayed readings are stored as replayed under
the sandbox, and a default query for the live city does not see them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from ioc.registry import Device
from ioc.settings import MqttUrl
from ioc_cli import app
from services.api.keys import create_key
from simulators.fleet import build_fleet
from simulators.publisher import publish_fleet
from simulators.recording import record
from testkit.apiserver import ApiServer
from testkit.broker import MosquittoBroker
from testkit.feeds import count, register
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
CITY = "dien-bien-phu"
READINGS = ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings", "environment_readings")
# What a query about the live city returns by default (the API's default filter): its devices, live + backfill.
LIVE_CITY_ROWS = """SELECT count(*) FROM ioc.{} r JOIN ioc.devices d USING (device_id)
                    WHERE d.city = %s AND r.provenance IN ('live', 'backfill')"""


def retained_statuses(broker: MosquittoBroker, filt: str = "ioc/v1/+/+/+/status") -> dict[str, bytes]:
    """What the broker holds retained (what a new subscriber, a panel or an alert bridge, would take as current)."""
    got: dict[str, bytes] = {}
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"peek-{time.monotonic_ns()}", protocol=mqtt.MQTTv311)
    client.on_message = lambda _c, _u, m: got.__setitem__(m.topic, bytes(m.payload)) if m.retain else None
    client.on_subscribe = lambda *_a: done.set()
    client.on_connect = lambda c, *_a: c.subscribe(filt, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert done.wait(10)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    return got


def state(dsn: str, city: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("""SELECT s.* FROM ioc.device_state s JOIN ioc.devices d USING (device_id)
                               WHERE d.city = %s ORDER BY device_id""", (city,)).fetchall()


def rows(dsn: str, where: str = "", *params: Any) -> int:
    return sum(count(dsn, f"SELECT count(*) FROM ioc.{t} r {where}", *params) for t in READINGS)


def settle(dsn: str, where: str = "", *params: Any, quiet_s: float = 2.0, timeout: float = 90) -> int:
    """Row count once it has stopped moving for ``quiet_s``."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = rows(dsn, where, *params)
        if n != last:
            last, since = n, time.monotonic()
        elif n and time.monotonic() - since >= quiet_s:
            return n
        time.sleep(0.25)
    return last


@pytest.fixture
def live_city(database: str, broker: MosquittoBroker) -> Iterator[tuple[str, MosquittoBroker, list[Device]]]:
    fleet = build_fleet("smoke", seed=5)
    register(database, fleet)
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        yield database, broker, fleet
        assert ingest.proc.poll() is None, ingest.log_text()[-2000:]


def test_replay_into_a_sandbox_leaves_the_live_city_alone(
        live_city: tuple[str, MosquittoBroker, list[Device]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn, broker, fleet = live_city
    url = MqttUrl.parse(broker.url)
    file = tmp_path / "last-month.iocrec"
    ready, stop = threading.Event(), threading.Event()
    recorder = threading.Thread(target=record, args=(url, "ioc/v1/#", file), kwargs={"ready": ready, "stop": stop},
                                daemon=True)
    recorder.start()
    assert ready.wait(10)
    # the recorded feed: 30 min of the city, ending with every device going offline (retained, as devices do)
    end = int(time.time()) // 60 * 60
    publish_fleet(fleet, url, seed=5, start=end - 1800, duration_s=1800, speed=0, offline_at_end=True)
    recorded = settle(dsn)
    time.sleep(0.5)
    stop.set()
    recorder.join(30)

    # the live city now: every device back online (retained), which ingest has taken in
    with Publisher(broker.host, broker.port, client_id="live-city") as pub:
        for d in fleet:
            pub.publish(f"ioc/v1/{CITY}/{d.family}/{d.device_id}/status", b"online", retain=True)
        pub.flush()
    deadline = time.monotonic() + 30
    while count(dsn, "SELECT count(*) FROM ioc.device_state WHERE status = 'online'") < len(fleet):
        assert time.monotonic() < deadline, "live statuses not taken in"
        time.sleep(0.2)
    live_retained = retained_statuses(broker)
    live_state = state(dsn, CITY)
    live_rows = rows(dsn)
    assert set(live_retained.values()) == {b"online"} and len(live_retained) == len(fleet)

    monkeypatch.setenv("IOC_MQTT_URL", broker.url)
    monkeypatch.setenv("IOC_DATABASE_URL", dsn)
    runner = CliRunner()
    # into the real city: refused, the database holds live readings
    refused = runner.invoke(app, ["sim", "replay", str(file), "--speed", "0"])
    assert refused.exit_code == 2 and "--sandbox" in refused.output and "live readings" in refused.output
    result = runner.invoke(app, ["sim", "replay", str(file), "--speed", "0", "--shift-to-now",
                                    "--sandbox", CITY])
    assert result.exit_code == 0, result.output
    assert f"{len(fleet)} replayed devices registered" in result.output
    replayed = settle(dsn, "WHERE provenance = 'replayed'")
    assert replayed == recorded

    # the live city is untouched: broker's retained statuses, device_state, rows
    assert retained_statuses(broker, f"ioc/v1/{CITY}/+/+/status") == live_retained
    assert retained_statuses(broker, "ioc/v1/sim-dien-bien-phu/#") == {}  # the replay retained nothing
    assert state(dsn, CITY) == live_state
    assert rows(dsn, "WHERE provenance IN ('live', 'backfill')") == live_rows == recorded
    assert sum(count(dsn, LIVE_CITY_ROWS.format(t), CITY) for t in READINGS) == live_rows
    # the replay is in the sandbox, stored as replayed, its statuses there (every device went offline at the end)
    assert rows(dsn, "JOIN ioc.devices d USING (device_id) WHERE d.city = 'sim-dien-bien-phu' "
                     "AND r.provenance = 'replayed' AND r.device_id LIKE 'SIM-%%'") == recorded
    sandbox_state = state(dsn, "sim-dien-bien-phu")
    assert len(sandbox_state) == len(fleet) and {s[3] for s in sandbox_state} == {"offline"}
    assert count(dsn, "SELECT count(*) FROM ioc.rejected_messages") == 0

    # the API's default query for the live city does not return the replayed readings; the sandbox's does
    lamps_live = count(dsn, "SELECT count(*) FROM ioc.lighting_readings WHERE device_id NOT LIKE 'SIM-%%'")
    lamps_replayed = count(dsn, "SELECT count(*) FROM ioc.lighting_readings WHERE provenance = 'replayed'")
    assert lamps_live == lamps_replayed > 0
    with psycopg.connect(dsn) as conn:
        key = create_key(conn, "viewer", "viewer")[1]
    now = datetime.now(UTC)
    window = {"kind": "streetlight", "metric": "power_w", "fn": "count", "interval": "1d", "source": "raw",
              "start": (now - timedelta(hours=3)).isoformat(), "end": (now + timedelta(minutes=10)).isoformat()}
    with ApiServer(dsn) as api:
        def lamp_rows(**params: str) -> int:
            r = httpx.get(f"{api.url}/v1/series", params={**window, **params}, headers={"X-API-Key": key}, timeout=30)
            assert r.status_code == 200, r.text
            return int(sum(p["value"] or 0 for p in r.json()["points"]))

        assert lamp_rows(city=CITY) == lamp_rows() == lamps_live
        assert lamp_rows(city="sim-dien-bien-phu") == lamps_replayed
        latest = httpx.get(f"{api.url}/v1/latest", headers={"X-API-Key": key}, timeout=30).json()
        assert len(latest) == len(fleet) and not any(d["device_id"].startswith("SIM-") for d in latest)


@pytest.mark.slow
def test_a_sandbox_simulation_registers_its_own_devices_and_stores_simulated_readings(
        plain_database: str, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = plain_database
    fleet = build_fleet(50, seed=1)
    register(dsn, fleet)  # the live twins exist: the sandbox must not touch them
    monkeypatch.setenv("IOC_MQTT_URL", broker.url)
    monkeypatch.setenv("IOC_DATABASE_URL", dsn)
    with IngestProcess(dsn, broker.url) as ingest:
        ingest.wait_connected()
        result = CliRunner().invoke(app, ["sim", "run", "--fleet", "50", "--speed", "0", "--duration", "30m",
                                             "--sandbox", "test"])
        assert result.exit_code == 0, result.output
        assert f"sandbox sim-test: {len(fleet)} simulated devices registered" in result.output
        stored = settle(dsn)
        # a back-fill of the hours before, into the same sandbox: simulated too, however old
        start = datetime.fromtimestamp(time.time() // 3600 * 3600 - 4 * 3600, UTC).isoformat()
        result = CliRunner().invoke(app, ["sim", "backfill", "--fleet", "50", "--days", "0.125", "--start", start,
                                          "--sandbox", "test"])
        assert result.exit_code == 0, result.output
        stored_after = settle(dsn)
        assert ingest.stop() == 0
    assert stored_after > stored > 0
    assert rows(dsn, "WHERE provenance = 'simulated' AND device_id LIKE 'SIM-%%'") == stored_after
    assert set(retained_statuses(broker)) == {f"ioc/v1/sim-test/{d.family}/SIM-{d.device_id}/status"
                                              for d in fleet}
    assert count(dsn, "SELECT count(*) FROM ioc.devices WHERE city = 'dien-bien-phu'") == len(fleet)
    assert count(dsn, "SELECT count(*) FROM ioc.device_state s JOIN ioc.devices d USING (device_id) "
                      "WHERE d.city = 'dien-bien-phu' AND s.last_seen IS NOT NULL") == 0
    # the same ids cannot be taken by a second sandbox
    again = CliRunner().invoke(app, ["sim", "run", "--fleet", "50", "--speed", "0", "--duration", "1m",
                                        "--sandbox", "other"])
    assert again.exit_code == 2 and "already registered in another city" in again.output
