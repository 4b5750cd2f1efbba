"""The subscriber's own PUBLISH parser, fed the bytes a broker sends, split at every possible boundary."""

from __future__ import annotations

import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from services.ingest.mqtt_client import IngestClient
from services.ingest.pending import Pending, PendingBuffer


def publish_packet(topic: str, payload: bytes, qos: int, mid: int = 0, retain: bool = False) -> bytes:
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    body += payload
    header = 0x30 | (qos << 1) | int(retain)
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([header]) + encoded + body


def client_with_sink() -> tuple[IngestClient, list[tuple[int, str, bytes, bool]]]:
    got: list[tuple[int, str, bytes, bool]] = []
    client = IngestClient(CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True,
                           sink=lambda *m: got.append(m))
    return client, got


STREAM = [
    ("ioc/v1/dien-bien-phu/lighting/L1/telemetry", b'{"dateObserved": 1}', 1, 1, False),
    ("ioc/v1/dien-bien-phu/lighting/L1/status", b"offline", 1, 65535, True),
    ("ioc/v1/dien-bien-phu/water/Mường-1/telemetry", b"x" * 200_000, 1, 2, False),  # 3-byte remaining length
    ("ioc/v1/dien-bien-phu/traffic/T1/telemetry", b"", 0, 0, False),
]


def test_split_at_every_boundary_yields_the_same_messages() -> None:
    data = b"".join(publish_packet(t, p, q, m, r) for t, p, q, m, r in STREAM)
    expected = [(m, t, p, r) for t, p, q, m, r in STREAM]
    small = b"".join(publish_packet(t, p[:50], q, m, r) for t, p, q, m, r in STREAM)
    small_expected = [(m, t, p[:50], r) for t, p, q, m, r in STREAM]
    for cut in range(1, len(small)):
        client, got = client_with_sink()
        assert client._parse(small[:cut]) == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert client._parse(client._rest + small[cut:]) == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert got == small_expected, cut
        assert client._rest == b""
    client, got = client_with_sink()
    for i in range(0, len(data), 4096):  # the big one arrives over many reads
        assert client._parse(client._rest + data[i:i + 4096]) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == expected


def test_other_packets_go_to_paho() -> None:
    client, got = client_with_sink()
    client._ping_t = 123.0
    assert client._parse(b"\xd0\x00" + publish_packet("a/b", b"1", 1, 7)) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert client._ping_t == 0  # paho's PINGRESP handler ran
    assert got == [(7, "a/b", b"1", False)]


def test_malformed_remaining_length_is_a_protocol_error() -> None:
    client, _ = client_with_sink()
    assert client._parse(b"\x30\xff\xff\xff\xff\x01") == MQTTErrorCode.MQTT_ERR_PROTOCOL


def test_acks_for_a_batch_are_one_write() -> None:
    client, _ = client_with_sink()
    client.ack_many([1, 258, 65535])
    assert [p["packet"] for p in client._out_packet] == [b"\x40\x02\x00\x01\x40\x02\x01\x02\x40\x02\xff\xff"]


@pytest.mark.timeout(10)
def test_buffer_takes_by_count_and_bytes_and_keeps_old_connections_messages() -> None:
    import threading
    from datetime import UTC, datetime

    buf = PendingBuffer(wake_at=3, wake_bytes=10)
    for i in range(5):
        buf.put(Pending(generation=i // 3, mid=i + 1, topic="t", payload=b"abcd", received=0.0,
                        received_at=datetime.now(UTC)))
    stop = threading.Event()
    assert [p.mid for p in buf.take(10, max_bytes=9, max_wait_s=0, stop=stop)] == [1, 2]
    assert buf.size() == (5, 20) and buf.queued() == 3  # taken but unacknowledged still counts
    assert buf.oldest() == 0.0
    # a message of an older connection (mid 3) is still committed: only its PUBACK is skipped, by the subscriber
    assert [p.mid for p in buf.take(10, max_bytes=1 << 20, max_wait_s=0, stop=stop)] == [3, 4, 5]
    assert buf.size() == (5, 20)
    buf.settle()
    buf.settle()
    assert buf.size() == (0, 0) and buf.oldest() is None


def test_a_puback_is_never_sent_on_a_newer_connection_for_an_older_ones_packet() -> None:
    from datetime import UTC, datetime

    from ioc.settings import MqttUrl
    from services.ingest.subscriber import Subscriber

    buf = PendingBuffer()
    sub = Subscriber(MqttUrl("127.0.0.1", 1, False, None, None), "t", "", buf)
    first = [Pending(sub.generation, mid, "t", b"", 0.0, datetime.now(UTC)) for mid in (1, 2)]
    sub._on_disconnect(sub.client, None, None, "lost", None)  # the connection they arrived on is gone
    second = [Pending(sub.generation, mid, "t", b"", 0.0, datetime.now(UTC)) for mid in (1, 3)]
    sub.ack(first)  # committed after the reconnect: their packet ids mean nothing (or another message) now
    sub.ack(second)
    sub._send_acks()
    assert [p["packet"] for p in sub.client._out_packet] == [b"\x40\x02\x00\x01\x40\x02\x00\x03"]


def test_a_paho_without_the_internals_the_client_relies_on_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.ingest import mqtt_client

    mqtt_client.check_paho()  # the pinned version has them all
    monkeypatch.setattr(mqtt_client, "PAHO_INTERNALS", (*mqtt_client.PAHO_INTERNALS, "_gone_in_a_new_release"))
    with pytest.raises(ImportError, match=r"_gone_in_a_new_release.*pinned in pyproject\.toml"):
        mqtt_client.check_paho()
