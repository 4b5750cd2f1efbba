"""paho's MQTT client with a lean receive path for PUBLISH packets (see ``IngestClient``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

# Bytes taken from the socket per recv(): one syscall for a few hundred messages instead of three per message.
RECV_CHUNK = 256 * 1024
# The paho internals IngestClient relies on. pyproject pins paho to the version the tests run; this check turns
# a paho that changed them into a clear error at start instead of a network thread failing mid-stream.
PAHO_INTERNALS = ("_sock_recv", "_sock_close", "_packet_handle", "_packet_queue", "_loop_rc_handle", "_in_packet",
                  "_msgtime_mutex", "_last_bytes_received", "_sock", "_ssl")


def check_paho() -> None:
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    missing = [name for name in PAHO_INTERNALS if not hasattr(probe, name)]
    if missing:
        raise ImportError(f"paho-mqtt {getattr(mqtt, '__version__', '?')} lacks {', '.join(missing)}, which the "
                          "ingest client relies on; install the version pinned in pyproject.toml")


check_paho()

PublishSink = Callable[[int, str, bytes, bool], None]
_PUBLISH, _PUBACK = 0x30, 0x40


class IngestClient(mqtt.Client):
    """paho, with a lean receive path for PUBLISH packets.

    paho reads every packet with several one-byte recv() calls, builds an MQTTMessage, walks its topic matcher
    and takes two locks before a callback sees it: ~20 µs a message, which alone caps one process below the
    ingest's target rate. Here the socket is read in large chunks, PUBLISH packets are parsed in place and
    handed to ``sink(mid, topic, payload, retained)`` (mid 0 for QoS 0: nothing to acknowledge), and every other packet
    (CONNACK, SUBACK, PINGRESP, …) goes through paho's own handler. PUBACKs for a committed batch are queued
    as one write. Connection, keepalive, TLS and reconnects stay paho's. Relies on paho 2.x internals
    (`_sock_recv`, `_packet_handle`, `_in_packet`, `_packet_queue`), hence the pinned version range.
    """

    def __init__(self, *args: Any, sink: PublishSink, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink
        self._rest = b""

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            try:
                data = self._sock_recv(RECV_CHUNK)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except OSError:
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            if not data:
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            rc = self._parse(self._rest + data if self._rest else data)
            with self._msgtime_mutex:
                self._last_bytes_received = time.monotonic()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return self._loop_rc_handle(rc)
            # TLS keeps decrypted bytes that select() cannot see: drain them now.
            if not (self._ssl and self._sock is not None and getattr(self._sock, "pending", lambda: 0)()):
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _parse(self, buf: bytes) -> MQTTErrorCode:
        pos, end, sink = 0, len(buf), self._sink
        while end - pos >= 2:
            header, i, length, shift = buf[pos], pos + 1, 0, 0
            while i < end:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
                if shift >= 28:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
            else:
                break  # remaining-length bytes not all here yet
            if i + length > end:
                break  # body not all here yet
            body_end = i + length
            if header & 0xF0 == _PUBLISH:
                topic_end = i + 2 + (buf[i] << 8 | buf[i + 1])
                topic = buf[i + 2: topic_end].decode("utf-8", "replace")
                retained = bool(header & 0x01)  # set only on a retained message replayed to a new subscription
                if header & 0x06:  # QoS 1 (the subscription's maximum, so never 2)
                    sink(buf[topic_end] << 8 | buf[topic_end + 1], topic, buf[topic_end + 2: body_end], retained)
                else:
                    sink(0, topic, buf[topic_end:body_end], retained)
            else:
                self._in_packet = {"command": header, "have_remaining": 1, "remaining_count": [],
                                   "remaining_mult": 1, "remaining_length": length,
                                   "packet": bytearray(buf[i:body_end]), "to_process": 0, "pos": 0}
                rc = self._packet_handle()
                self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                                   "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
            pos = body_end
        self._rest = buf[pos:]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        if mids:
            packet = b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)
            self._packet_queue(_PUBACK, packet, 0, 0)

    def _sock_close(self) -> None:
        self._rest = b""
        super()._sock_close()
