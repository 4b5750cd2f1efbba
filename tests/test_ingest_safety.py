"""Ingest never stalls silently and never acknowledges what it could not store (real Mosquitto and PostgreSQL):
an unknown kind, an exception in each stage, a flood of bad readings in one message, a database that blocks."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from testkit.broker import MosquittoBroker
from testkit.feeds import count, lamp_feed, lamp_reading, lamps, register, topic, wait_for
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROWS = "SELECT count(*) FROM ioc.lighting_readings"
REJECTS = "SELECT count(*) FROM ioc.rejected_messages"


def test_a_device_of_an_unknown_kind_among_2000_good_readings(database: str, broker: MosquittoBroker) -> None:
    devices = lamps(100)
    register(database, devices)
    with psycopg.connect(database, autocommit=True) as conn:  # a newer release registered a kind we do not know
        conn.execute("ALTER TABLE ioc.devices DROP CONSTRAINT devices_kind_known")
        conn.execute("INSERT INTO ioc.devices (device_id, family, kind, city, report_interval_s)"
                     " VALUES ('SOLAR1', 'lighting', 'solar_panel', 'dien-bien-phu', 600)")
    feed = lamp_feed(devices, per_device=20)
    stream = [*feed[:1000], (topic("SOLAR1"), json.dumps(lamp_reading(0, 0)).encode()), *feed[1000:]]
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(stream)
        assert wait_for(database, ROWS, 2_000) == 2_000, ingest.log_text()[-2000:]
        assert wait_for(database, REJECTS, 1) == 1
        assert count(database, "SELECT reason FROM ioc.rejected_messages") == "unknown_kind"
        assert ingest.health()[0] == 200
        assert ingest.stop() == 0


@pytest.mark.parametrize(("fault", "stage"), [("network", "network"), ("decode_batch", "decode"),
                                             ("database", "database")])
def test_an_exception_in_a_stage_ends_the_process_within_seconds(plain_database: str, broker: MosquittoBroker,
                                                                 fault: str, stage: str) -> None:
    devices = lamps(10)
    register(plain_database, devices)
    with IngestProcess(plain_database, broker.url, IOC_INGEST_INJECT_FAULT=f"{fault}:LAMP0007") as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(lamp_feed(devices[:5], per_device=2))
            assert wait_for(plain_database, ROWS, 10) == 10
            published = time.monotonic()
            pub.publish_all(lamp_feed(devices[7:8], per_device=1))
        code = ingest.proc.wait(timeout=10)
        assert time.monotonic() - published < 5
        assert code == 70, ingest.log_text()
        log = ingest.log_text()
        assert f"the {stage} stage failed unexpectedly" in log and "InjectedFault" in log and "Traceback" in log
    # nothing of the poisoned message was acknowledged: a healthy ingest picks it up from the broker
    with IngestProcess(plain_database, broker.url) as again:
        again.wait_connected()
        assert wait_for(plain_database, ROWS, 11) == 11
        assert again.stop() == 0


def test_an_exception_while_decoding_one_message_rejects_only_that_message(
        plain_database: str, broker: MosquittoBroker) -> None:
    devices = lamps(10)
    register(plain_database, devices)
    with IngestProcess(plain_database, broker.url, IOC_INGEST_INJECT_FAULT="decode:LAMP0007") as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(lamp_feed(devices, per_device=10))
        assert wait_for(plain_database, ROWS, 90) == 90
        assert wait_for(plain_database, REJECTS, 10) == 10
        with psycopg.connect(plain_database) as conn:
            rows = conn.execute("SELECT DISTINCT device_id, reason, detail FROM ioc.rejected_messages").fetchall()
        assert [(d, r) for d, r, _ in rows] == [("LAMP0007", "internal_error")]
        assert "InjectedFault" in rows[0][2]
        assert ingest.proc.poll() is None and ingest.health()[0] == 200
        assert ingest.stop() == 0


def test_100k_invalid_items_make_bounded_rejections_and_a_redelivery_adds_none(
        database: str, broker: MosquittoBroker) -> None:
    devices = lamps(20)
    register(database, devices)
    feed = lamp_feed(devices, per_device=10)
    good = json.dumps(lamp_reading(0, 999))
    flood = ("[" + good + "," + ",".join(["0"] * 100_000) + "]").encode()  # 200 KB
    assert len(flood) < 256 << 10
    bad_topic = topic("LAMP0003")
    with IngestProcess(database, broker.url, IOC_INGEST_MAX_BATCH_READINGS="200000") as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all([*feed[:100], (bad_topic, flood), *feed[100:]])
            assert wait_for(database, ROWS, 201) == 201  # its one good reading too
            assert wait_for(database, REJECTS, 21) == 21  # 20 in detail + 1 summary (decode.py)
            pub.publish_all([(bad_topic, flood)])  # the same message again (redelivered, replayed)
            assert wait_for(database, "SELECT sum(times_received) FROM ioc.rejected_messages", 42) == 42
        assert count(database, REJECTS) == 21
        assert count(database, ROWS) == 201
        summary = count(database, "SELECT detail FROM ioc.rejected_messages WHERE reason = 'too_many_rejections'")
        assert "99980 more" in summary
        # every bad reading is still counted, by reason
        assert ingest.metric("ioc_ingest_rejected_total", reason="wrong_type") == 2 * 100_000
        assert ingest.stop() == 0


def test_a_database_that_blocks_without_an_error_shows_as_stalled(plain_database: str,
                                                                   broker: MosquittoBroker) -> None:
    devices = lamps(10)
    register(plain_database, devices)
    with IngestProcess(plain_database, broker.url, IOC_INGEST_STALL_AFTER_S="1") as ingest, \
            psycopg.connect(plain_database) as blocker:
        ingest.wait_connected()
        assert ingest.health()[0] == 200
        blocker.execute("LOCK TABLE ioc.lighting_readings IN ACCESS EXCLUSIVE MODE")  # until commit
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(lamp_feed(devices, per_device=3))
        time.sleep(2.5)
        status, body = ingest.health()
        assert status == 503, body
        assert any("stalled" in r for r in body["reasons"]), body  # type: ignore[union-attr]
        blocker.commit()
        assert wait_for(plain_database, ROWS, 30) == 30
        deadline = time.monotonic() + 10
        while ingest.health()[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ingest.health()[0] == 200
        assert ingest.stop() == 0
