"""Why ingest speaks MQTT 3.1.1 and reads PUBLISH packets itself: receive rates of a QoS 1 backlog.

Pre-loads a persistent session with N messages, then drains it acknowledging every message, with
  - paho's own receive path, MQTT 5 (properties parsed on every PUBLISH),
  - paho's own receive path, MQTT 3.1.1,
  - the ingest's subscriber (MQTT 3.1.1, lean PUBLISH parser, batched PUBACKs).

    .venv/bin/python -m bench.mqtt_receive_bench [--messages 60000]
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.common import CITY, MosquittoBroker, Publisher, encode, lamp_payload, status
from ioc.settings import MqttUrl
from services.ingest.pending import PendingBuffer
from services.ingest.subscriber import Subscriber

TOPIC = f"ioc/v1/{CITY}/lighting/BL00001/telemetry"


def preload(broker: MosquittoBroker, n: int) -> None:
    payload = encode(lamp_payload(1_773_486_000_000, 1))
    with Publisher(broker.host, broker.port, client_id="preload") as pub:
        pub.publish_all((TOPIC, payload) for _ in range(n))


def paho_drain(broker: MosquittoBroker, n: int, protocol: int) -> float:
    client_id = f"bench-{protocol}"

    def make() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=True,
                        clean_session=False if protocol == mqtt.MQTTv311 else None)
        return c

    def connect(c: mqtt.Client) -> None:
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            c.connect_async(broker.host, broker.port, clean_start=False, properties=props)
        else:
            c.connect_async(broker.host, broker.port)

    subscribed = threading.Event()
    first = make()
    first.on_subscribe = lambda *a: subscribed.set()
    first.on_connect = lambda c, *a: c.subscribe("ioc/v1/#", qos=1)
    connect(first)
    first.loop_start()
    subscribed.wait(10)
    first.disconnect()
    first.loop_stop()
    preload(broker, n)
    got = 0
    done = threading.Event()
    started: list[float] = []

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal got
        if not started:
            started.append(time.perf_counter())
        c.ack(msg.mid, 1)
        got += 1
        if got >= n:
            done.set()

    client = make()
    client.on_message = on_message
    connect(client)
    client.loop_start()
    done.wait(300)
    rate = n / (time.perf_counter() - started[0])
    client.disconnect()
    client.loop_stop()
    return rate


def ingest_drain(broker: MosquittoBroker, n: int) -> float:
    buffer = PendingBuffer()
    sub = Subscriber(MqttUrl.parse(broker.url), "bench-ingest", "", buffer)
    sub.start()
    sub.connected.wait(10)
    time.sleep(0.5)
    sub.stop()
    preload(broker, n)
    buffer = PendingBuffer()
    sub = Subscriber(MqttUrl.parse(broker.url), "bench-ingest", "", buffer)
    stop = threading.Event()
    sub.start()
    got, started = 0, 0.0
    while got < n:
        items = buffer.take(5000, 1 << 30, 0.01, stop)
        if items and not started:
            started = time.perf_counter()
        got += len(items)
        sub.ack(items)
        if items:
            buffer.settle()
    rate = n / (time.perf_counter() - started)
    sub.stop()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=60_000)
    args = parser.parse_args()
    results = {}
    for name, run in (("paho, MQTT 5", lambda b: paho_drain(b, args.messages, mqtt.MQTTv5)),
                      ("paho, MQTT 3.1.1", lambda b: paho_drain(b, args.messages, mqtt.MQTTv311)),
                      ("ingest subscriber, MQTT 3.1.1", lambda b: ingest_drain(b, args.messages))):
        with MosquittoBroker() as broker:
            results[name] = run(broker)
            status(f"{name}: {results[name]:,.0f} msg/s")
    print(f"\nreceive + acknowledge a {args.messages}-message QoS 1 backlog ({datetime.now(UTC):%Y-%m-%d}):")
    for name, rate in results.items():
        print(f"  {name:<32} {rate:>10,.0f} msg/s")


if __name__ == "__main__":
    main()
