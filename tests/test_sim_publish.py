"""The lean QoS 1 publisher and the parallel back-fill, against a real Mosquitto."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ioc.registry import Device
from ioc.settings import MqttUrl
from simulators.clock import parse_start
from simulators.fleet import build_fleet
from simulators.generator import hourly_batches
from simulators.mqtt import Connection, MqttError, Will
from simulators.publisher import backfill
from simulators.wire import LeanConnection, connect_packet, publish_packet
from testkit.broker import MosquittoBroker

START = parse_start("2026-03-14T17:00:00")


@pytest.fixture(scope="module")
def smoke() -> list[Device]:
    return build_fleet("smoke", 1)


def test_packets_are_mqtt_311() -> None:
    pkt = publish_packet(b"a/b", b"xyz", 7, retain=True)
    assert pkt == b"\x33\x0a\x00\x03a/b\x00\x07xyz"
    big = publish_packet(b"t", b"x" * 200, 1, retain=False)
    assert big[:3] == b"\x32\xcd\x01"  # remaining length 205 as a two-byte varint
    conn = connect_packet("c1", 30, "user", "pw", Will("s/t"))
    assert conn[:2] == b"\x10" + bytes([len(conn) - 2]) and b"MQTT\x04" in conn and conn[9] == 0xEE


def test_lean_publisher_counts_every_puback(broker: MosquittoBroker) -> None:
    url = MqttUrl.parse(broker.url)
    received: Counter[str] = Counter()
    done = threading.Event()
    total = 20_000

    def on_message(msg: object) -> None:
        received["n"] += 1
        if received["n"] == total:
            done.set()

    sub = Connection(url, "lean-test-sub", on_message=on_message)  # type: ignore[arg-type]
    sub.start()
    sub.wait_connected()
    sub.client.subscribe("lean/#", qos=1)
    pub = LeanConnection(url, "lean-test-pub", window=500)  # a small window: the publisher must wait for acks
    pub.start()
    pub.wait_connected()
    try:
        for i in range(total):
            pub.publish(f"lean/{i % 7}", b"%d" % i, False, "lighting" if i % 2 else "water")
        assert pub.drain(30.0)
        assert pub.counts() == (Counter({"lighting": total // 2, "water": total // 2}),) * 2
        assert done.wait(30.0)
    finally:
        pub.stop()
        sub.stop()


def test_lean_publisher_reports_a_refused_connection() -> None:
    from testkit.ports import free_port

    pub = LeanConnection(MqttUrl.parse(f"mqtt://127.0.0.1:{free_port()}"), "nobody")
    pub.start()
    with pytest.raises(MqttError):
        pub.wait_connected(2.0)
    pub.stop()


def test_device_parts_together_are_the_whole_backfill(smoke: list[Device]) -> None:
    whole = sorted((m.topic, m.payload) for b in hourly_batches(smoke, 1, START, START + 2 * 3600) for m in b)
    parts = sorted((m.topic, m.payload) for k in range(3)
                   for b in hourly_batches(smoke, 1, START, START + 2 * 3600, part=(k, 3)) for m in b)
    assert whole == parts


def test_parallel_backfill_publishes_and_acknowledges_everything(broker: MosquittoBroker,
                                                                 smoke: list[Device]) -> None:
    url = MqttUrl.parse(broker.url)
    one = backfill(smoke, url, seed=1, start=START, end=START + 2 * 3600)
    three = backfill(smoke, url, seed=1, start=START, end=START + 2 * 3600, processes=3)
    assert one.complete and three.complete
    assert three.published == one.published == three.acked
    assert three.readings == one.readings and three.total_readings > 2000
