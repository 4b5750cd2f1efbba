"""Ingest against a real Mosquitto (started from the project's config) and a real PostgreSQL, on both storage
paths: nothing lost, nothing doubled, nothing silent."""

from __future__ import annotations

import json
from collections import Counter

import psycopg
import pytest

from testkit.broker import MosquittoBroker
from testkit.feeds import BAD_INPUTS, CITY, T0, count, lamp_feed, lamps, register, topic, wait_for
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def per_device_counts(dsn: str) -> Counter[str]:
    with psycopg.connect(dsn) as conn:
        return Counter(dict(conn.execute(
            "SELECT device_id, count(*) FROM ioc.lighting_readings GROUP BY device_id").fetchall()))


def test_10k_readings_from_500_devices_stored_exactly_once_even_when_sent_twice(
        database: str, broker: MosquittoBroker) -> None:
    devices = lamps(500)
    register(database, devices)
    feed = lamp_feed(devices, per_device=20)
    assert len(feed) == 10_000
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(feed)
            assert pub.acked == 10_000
        assert wait_for(database, "SELECT count(*) FROM ioc.lighting_readings", 10_000) == 10_000
        assert per_device_counts(database) == Counter({d.device_id: 20 for d in devices})

        with Publisher(broker.host, broker.port, client_id="replayer") as pub:
            pub.publish_all(feed)
        # wait until ingest has seen the whole second copy, then check nothing was added
        deadline_rows = 'ioc_ingest_duplicate_rows_total{table="lighting_readings"}'
        import time
        for _ in range(300):
            if ingest.metrics().get(deadline_rows, 0) >= 10_000:
                break
            time.sleep(0.2)
        assert ingest.metrics()[deadline_rows] == 10_000
        assert count(database, "SELECT count(*) FROM ioc.lighting_readings") == 10_000
        assert per_device_counts(database) == Counter({d.device_id: 20 for d in devices})
        # the device state saw every device, with its newest reading time
        newest = count(database, "SELECT max(last_reading_time) FROM ioc.device_state")
        assert newest == T0.replace(minute=T0.minute + 19)
        assert count(database, "SELECT count(*) FROM ioc.device_state WHERE last_seen IS NOT NULL") == 500
        assert ingest.stop() == 0




def test_bad_input_is_rejected_with_a_distinct_reason_and_the_stream_goes_on(
        database: str, broker: MosquittoBroker) -> None:
    devices = lamps(10)
    register(database, devices)
    good = lamp_feed(devices, per_device=30)  # 300 good readings around the bad ones
    bad = [(topic(device), payload) for _, device, payload in BAD_INPUTS]
    bad.append((f"ioc/v1/{CITY}/gasworks/LAMP0001/telemetry", b"{}"))  # unknown family
    bad.append((topic("LAMP0001", family="water"), b"{}"))  # registered as lighting
    expected = Counter(reason for reason, _, _ in BAD_INPUTS) + Counter(["unknown_family", "family_mismatch"])
    assert len(expected) >= 12 and all(n == 1 for n in expected.values())
    stream = []
    for i, message in enumerate(good):
        stream.append(message)
        if i % 17 == 0 and bad:
            stream.append(bad.pop(0))
    stream.extend(bad)
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(stream)
        assert wait_for(database, "SELECT count(*) FROM ioc.rejected_messages", sum(expected.values())) == sum(
            expected.values()), ingest.log_text()
        assert wait_for(database, "SELECT count(*) FROM ioc.lighting_readings", 300) == 300
        with psycopg.connect(database) as conn:
            rows = conn.execute(
                "SELECT reason, topic, detail, payload, payload_size FROM ioc.rejected_messages").fetchall()
        assert Counter(r[0] for r in rows) == expected
        for reason, topic_, detail, payload, size in rows:
            assert detail, f"{reason} has no detail"
            assert topic_.startswith("ioc/v1/")
            assert len(payload) <= 4096 and size >= len(payload)
        oversize = next(r for r in rows if r[0] == "oversize")
        assert oversize[4] > 300_000 and len(oversize[3]) == 4096
        # still running and healthy, and the metrics count every reason
        assert ingest.proc.poll() is None
        status, body = ingest.health()
        assert status == 200 and body["mqtt_connected"] is True
        metrics = ingest.metrics()
        for reason in expected:
            assert metrics.get(f'ioc_ingest_rejected_total{{reason="{reason}"}}') == 1, reason


def test_batch_with_bad_readings_keeps_the_good_ones(database: str, broker: MosquittoBroker) -> None:
    register(database, lamps(1))
    batch = [{"dateObserved": f"2026-03-14T18:{m:02d}:00+07:00", "powerState": "on"} for m in range(10)]
    batch[3]["powerState"] = "blinking"
    batch[7]["dateObserved"] = "yesterday"
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish(topic("LAMP0000"), json.dumps(batch).encode())
            pub.flush()
        assert wait_for(database, "SELECT count(*) FROM ioc.rejected_messages", 2) == 2
        assert wait_for(database, "SELECT count(*) FROM ioc.lighting_readings", 8) == 8
        with psycopg.connect(database) as conn:
            details = sorted(r[0] for r in conn.execute("SELECT detail FROM ioc.rejected_messages"))
        assert details[0].startswith("reading 3:") and details[1].startswith("reading 7:")


def test_every_family_status_and_event_channels(database: str, broker: MosquittoBroker) -> None:
    from ioc.registry import Device

    devices = [
        Device(device_id="GW01", family="gateway", kind="gateway", city=CITY, report_interval_s=60),
        Device(device_id="CAB01", family="lighting", kind="cabinet", city=CITY, report_interval_s=300),
        Device(device_id="L01", family="lighting", kind="streetlight", city=CITY, report_interval_s=600,
               gateway_id="GW01", parent_id="CAB01"),
        Device(device_id="L02", family="lighting", kind="streetlight", city=CITY, report_interval_s=600,
               gateway_id="GW01", parent_id="CAB01"),
        Device(device_id="WM01", family="water", kind="meter", city=CITY, report_interval_s=900),
        Device(device_id="TC01", family="traffic", kind="counter", city=CITY, report_interval_s=60),
        Device(device_id="AQ01", family="environment", kind="air_quality", city=CITY, report_interval_s=300),
        Device(device_id="RG01", family="environment", kind="river_gauge", city=CITY, report_interval_s=300),
    ]
    register(database, devices)
    at = "2026-03-14T18:00:00+07:00"
    messages = [
        (topic("CAB01"), {"dateObserved": at, "workingMode": "automatic", "powerState": "on",
                          "voltage": {"R": 230.1, "S": 229.8, "T": 231.0}, "intensity": {"R": 10, "S": 11, "T": 9.5},
                          "activePower": {"R": 2.2, "S": 2.4, "T": 2.1}, "energyConsumed": 5120.5}),
        (topic("WM01", "water"), [{"dateObserved": at, "waterConsumption": 812.25, "flow": 120.0, "pressure": 2.1,
                                   "alarms": ["leak"]},
                                  {"dateObserved": 1773486900000, "waterConsumption": 812.5, "batteryLevel": 0.8}]),
        (topic("TC01", "traffic"), [{"dateObserved": at, "laneId": lane, "intensity": 40 + lane, "occupancy": 0.3,
                                     "averageVehicleSpeed": 28.5, "congested": False,
                                     "vehicleCount": {"motorcycle": 35, "car": 5 + lane}} for lane in (1, 2, 3)]),
        (topic("AQ01", "environment"), {"dateObserved": at, "pm25": 61.5, "pm10": 90.1, "temperature": 24.5,
                                        "relativeHumidity": 0.71, "LAeq": 63.2}),
        (topic("RG01", "environment"), {"dateObserved": at, "currentLevel": 2.35, "precipitation": 12.5}),
        (topic("L01", channel="event"), {"dateObserved": at, "eventType": "lampFailure", "severity": "critical",
                                         "description": "LED driver fault", "data": {"code": 17}}),
    ]
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            for t, payload in messages:
                pub.publish(t, json.dumps(payload).encode())
            pub.publish(topic("L01", channel="status"), b"online", retain=True)
            pub.publish(topic("GW01", "gateway", "status"), b"offline", retain=True)
            pub.flush()
        assert wait_for(database, "SELECT count(*) FROM ioc.device_events", 1) == 1
        assert wait_for(database, "SELECT count(*) FROM ioc.device_status_changes", 4) == 4, ingest.log_text()
        assert count(database, "SELECT count(*) FROM ioc.rejected_messages") == 0
        with psycopg.connect(database) as conn:
            q = conn.execute
            assert q("SELECT voltage_s_v, current_t_a, power_r_kw, energy_kwh FROM ioc.cabinet_readings").fetchone() \
                == pytest.approx((229.8, 9.5, 2.2, 5120.5))
            assert q("SELECT alarms FROM ioc.water_readings ORDER BY time").fetchall() == [(["leak"],), ([],)]
            assert q("SELECT lane_id, intensity, motorcycles, cars FROM ioc.traffic_readings ORDER BY lane_id"
                     ).fetchall() == [(1, 41, 35, 6), (2, 42, 35, 7), (3, 43, 35, 8)]
            assert q("SELECT pm25, relative_humidity, laeq_db FROM ioc.environment_readings WHERE device_id='AQ01'"
                     ).fetchone() == pytest.approx((61.5, 0.71, 63.2))
            assert q("SELECT water_level_m FROM ioc.environment_readings WHERE device_id='RG01'").fetchone() \
                == pytest.approx((2.35,))
            assert q("SELECT event_type, severity, data FROM ioc.device_events").fetchone() == (
                "lampFailure", "critical", {"code": 17})
            # the gateway's last will takes its devices offline with it; L01's own 'online' came first
            states = dict(q("SELECT device_id, status FROM ioc.device_state WHERE device_id IN "
                            "('GW01','L01','L02','WM01')").fetchall())
            assert states == {"GW01": "offline", "L01": "offline", "L02": "offline", "WM01": "unknown"}
            causes = sorted(q("SELECT device_id, status, cause FROM ioc.device_status_changes").fetchall())
            assert causes == [("GW01", "offline", "device"), ("L01", "offline", "gateway:GW01"),
                              ("L01", "online", "device"), ("L02", "offline", "gateway:GW01")]
        # a retained status redelivered (new subscriber, same value) is not a change
        assert ingest.stop() == 0
    with IngestProcess(database, broker.url, IOC_INGEST_SHARED_GROUP="") as again:
        again.wait_connected()
        import time
        time.sleep(1.5)
        assert count(database, "SELECT count(*) FROM ioc.device_status_changes") == 4
        assert again.stop() == 0


def test_sigterm_commits_and_acknowledges_what_is_pending(database: str, broker: MosquittoBroker) -> None:
    devices = lamps(50)
    register(database, devices)
    feed = lamp_feed(devices, per_device=40)
    # a long flush interval and large batches: at SIGTERM the readings are still pending in memory
    with IngestProcess(database, broker.url, IOC_INGEST_FLUSH_INTERVAL_MS="30000",
                       IOC_INGEST_BATCH_SIZE="100000") as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(feed)
        import time
        time.sleep(1.0)
        assert count(database, "SELECT count(*) FROM ioc.lighting_readings") == 0
        assert ingest.stop() == 0
        assert "stopped cleanly" in ingest.log_text()
    assert count(database, "SELECT count(*) FROM ioc.lighting_readings") == 2000
    # everything was acknowledged: a restarted worker gets no redelivery
    with IngestProcess(database, broker.url) as again:
        again.wait_connected()
        time.sleep(1.5)
        assert again.metrics().get('ioc_ingest_duplicate_rows_total{table="lighting_readings"}', 0) == 0
        assert again.stop() == 0


def test_two_workers_share_the_stream_and_store_each_reading_once(
        plain_database: str, broker: MosquittoBroker) -> None:
    devices = lamps(200)
    register(plain_database, devices)
    feed = lamp_feed(devices, per_device=25)
    with IngestProcess(plain_database, broker.url, 0, "--workers", "2") as ingest:
        ingest.wait_connected(count=2)
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(feed)
        assert wait_for(plain_database, "SELECT count(*) FROM ioc.lighting_readings", 5_000) == 5_000
        key = 'ioc_ingest_rows_written_total{table="lighting_readings"}'
        shares = [ingest.metrics(n).get(key, 0) for n in (0, 1)]
        assert sum(shares) == 5_000 and min(shares) > 0, shares
        assert ingest.stop() == 0


def test_a_device_registered_while_ingest_runs_is_accepted(plain_database: str, broker: MosquittoBroker) -> None:
    register(plain_database, lamps(1))
    with IngestProcess(plain_database, broker.url) as ingest:
        ingest.wait_connected()
        register(plain_database, lamps(3, prefix="NEW"))  # after ingest loaded the registry
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(lamp_feed(lamps(3, prefix="NEW"), per_device=2))
        assert wait_for(plain_database, "SELECT count(*) FROM ioc.lighting_readings", 6) == 6
        assert count(plain_database, "SELECT count(*) FROM ioc.rejected_messages") == 0


def test_a_message_the_database_refuses_is_isolated_and_the_rest_of_its_batch_stored(
        database: str, broker: MosquittoBroker) -> None:
    devices = lamps(5)
    register(database, devices)
    feed = lamp_feed(devices, per_device=20)
    # a batch of two events: one the decoder refuses, one valid that jsonb cannot hold (\u0000): only the
    # database finds out, and both refusals must be kept
    poisoned = (topic("LAMP0002", channel="event"),
                b'[{"dateObserved": "2026-03-14T18:00:00+07:00", "eventType": "sensorFault",'
                b' "data": {"raw": "\\u0000"}}, {"dateObserved": 1773486000000, "eventType": "not valid"}]')
    stream = [*feed[:50], poisoned, *feed[50:]]
    # one big batch, so the refusal has to be bisected out of it
    with IngestProcess(database, broker.url, IOC_INGEST_FLUSH_INTERVAL_MS="2000") as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(stream)
        assert wait_for(database, "SELECT count(*) FROM ioc.rejected_messages", 2) == 2
        assert wait_for(database, "SELECT count(*) FROM ioc.lighting_readings", 100) == 100
        with psycopg.connect(database) as conn:
            rows = dict(conn.execute("SELECT reason, detail FROM ioc.rejected_messages").fetchall())
        assert set(rows) == {"storage_error", "invalid_value"}
        assert "database refused" in rows["storage_error"]
        assert count(database, "SELECT count(*) FROM ioc.device_events") == 0
        # \u0000 in jsonb: SQLSTATE 22P05, a data exception (dberrors.py), so this message alone is refused
        assert ingest.metric("ioc_ingest_db_errors_total", kind="permanent", error="data_exception") >= 1
        assert ingest.proc.poll() is None
