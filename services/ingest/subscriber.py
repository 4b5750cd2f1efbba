"""The MQTT side: a persistent QoS 1 session whose messages are acknowledged only after commit.

Threading: one network thread owns the paho client (paho is not thread-safe for concurrent writes). Its
message callback only appends to the pending buffer; the writer thread hands back what it committed
through ``ack()``, and the network thread sends those PUBACKs. MQTT 3.1.1: the subscriber needs nothing of
MQTT 5, and paho's MQTT 5 path parses properties on every PUBLISH (`python -m bench.mqtt_receive_bench`
compares paho's receive paths with this one).
"""

from __future__ import annotations

import logging
import random
import select
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ioc.contract.topics import subscription_filter
from ioc.settings import MqttUrl
from services.ingest import metrics

log = logging.getLogger(__name__)

# Reconnect backoff: start fast (a broker restart takes a second), cap so a long outage costs little.
BACKOFF_START_S, BACKOFF_MAX_S = 0.5, 15.0
# Network loop tick: bounds how long a committed batch waits for its PUBACKs to be sent.
TICK_S = 0.005
# A waiting writer looks at the stop flag at least this often, so SIGTERM never waits out a long flush interval.
STOP_CHECK_S = 0.1
# Bytes taken from the socket per recv(): one syscall for a few hundred messages instead of three per message.
RECV_CHUNK = 256 * 1024


@dataclass(slots=True)
class Pending:
    generation: int  # the connection it arrived on; a PUBACK is valid only on that connection
    mid: int
    topic: str
    payload: bytes
    received: float  # time.monotonic()
    received_at: datetime
    retained: bool = False  # a retained message replayed on subscribe: a snapshot, not news


class PendingBuffer:
    """The ledger of unacknowledged messages, in arrival order: queued (not yet taken by the decode stage) and
    held (taken, in the pipeline until their PUBACKs are queued). Thread-safe."""

    def __init__(self, wake_at: int = 1, wake_bytes: int = 1) -> None:
        self.wake_at, self.wake_bytes = wake_at, wake_bytes
        self._items: deque[Pending] = deque()
        self._bytes = 0
        self._held: deque[list[Pending]] = deque()
        self._held_count = self._held_bytes = 0
        self._cond = threading.Condition()

    def put(self, item: Pending) -> None:
        with self._cond:
            self._items.append(item)
            self._bytes += len(item.payload)
            # Wake the writer only when it has something to start on or a full batch: waking it per message
            # makes the threads trade the GIL tens of thousands of times a second.
            if len(self._items) == 1 or len(self._items) >= self.wake_at or self._bytes >= self.wake_bytes:
                self._cond.notify()

    def take(self, max_items: int, max_bytes: int, max_wait_s: float, stop: threading.Event) -> list[Pending]:
        """Up to max_items / max_bytes (at least one message), returning early when full; waits at most
        max_wait_s after the first item arrives. The batch is held until ``settle``."""
        with self._cond:
            while not self._items and not stop.is_set():
                self._cond.wait(0.05)
            if self._items:
                deadline = time.monotonic() + max_wait_s
                while len(self._items) < max_items and self._bytes < max_bytes and not stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, STOP_CHECK_S))
            out: list[Pending] = []
            size = 0
            while self._items and len(out) < max_items and (not out or size + len(self._items[0].payload) <= max_bytes):
                item = self._items.popleft()
                size += len(item.payload)
                out.append(item)
            self._bytes -= size
            if out:
                self._held.append(out)
                self._held_count += len(out)
                self._held_bytes += size
            return out

    def settle(self) -> None:
        """The oldest held batch is done with (acknowledged, or abandoned to redelivery)."""
        with self._cond:
            batch = self._held.popleft()
            self._held_count -= len(batch)
            self._held_bytes -= sum(len(p.payload) for p in batch)

    def drop_before(self, generation: int) -> int:
        """Forget queued messages of a closed connection: the broker redelivers them on the next one. (Held ones
        finish their way through the pipeline; their PUBACKs are skipped.)"""
        with self._cond:
            keep = deque(p for p in self._items if p.generation >= generation)
            dropped = len(self._items) - len(keep)
            self._items = keep
            self._bytes = sum(len(p.payload) for p in keep)
            return dropped

    def queued(self) -> int:
        return len(self._items)

    def size(self) -> tuple[int, int]:
        """Unacknowledged messages and bytes, queued and held."""
        with self._cond:
            return len(self._items) + self._held_count, self._bytes + self._held_bytes

    def oldest(self) -> float | None:
        with self._cond:
            if self._held:
                return self._held[0][0].received
            return self._items[0].received if self._items else None


PublishSink = Callable[[int, str, bytes, bool], None]
_PUBLISH, _PUBACK = 0x30, 0x40


class _IngestClient(mqtt.Client):
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


class Subscriber:
    def __init__(self, url: MqttUrl, client_id: str, shared_group: str, buffer: PendingBuffer, *,
                 keepalive_s: int = 30, max_pending: int = 40_000, max_pending_bytes: int = 128 << 20,
                 topic_filter: str | None = None) -> None:
        self._url = url
        self._buffer = buffer
        self._keepalive = keepalive_s
        self._max_pending, self._max_pending_bytes = max_pending, max_pending_bytes
        filt = topic_filter or subscription_filter()
        self.subscription = f"$share/{shared_group}/{filt}" if shared_group else filt
        self.generation = 0
        self.connected = threading.Event()
        self._acks: deque[list[Pending]] = deque()
        self._stop = threading.Event()
        self._reading = True
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)

        self.client = _IngestClient(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                    protocol=mqtt.MQTTv311, manual_ack=True, sink=self._on_publish)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    # --- called from other threads -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def ack(self, items: list[Pending]) -> None:
        """Queue PUBACKs for committed messages (sent by the network thread, in order)."""
        self._acks.append(items)

    def stop_reading(self) -> None:
        """Stop taking new messages (shutdown): what is pending is still committed and acknowledged."""
        self._reading = False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send queued PUBACKs, disconnect cleanly, and end the network thread."""
        deadline = time.monotonic() + timeout_s
        while self._acks and time.monotonic() < deadline and self.connected.is_set():
            time.sleep(TICK_S)
        self._stop.set()
        self._thread.join(timeout=max(0.1, deadline - time.monotonic()) + 1)

    # --- network thread ----------------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: object,
                    properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused the connection: %s (check IOC_MQTT_URL credentials and the broker ACL)", reason)
            return
        metrics.MQTT_CONNECTS.inc()
        metrics.MQTT_CONNECTED.set(1)
        client.subscribe(self.subscription, qos=1)
        self.connected.set()
        log.info("connected to %s:%s as %s (session present: %s), subscribed to %s", self._url.host, self._url.port,
                 client._client_id.decode(), flags.session_present, self.subscription)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
        self.connected.clear()
        metrics.MQTT_CONNECTED.set(0)
        self.generation += 1
        dropped = self._buffer.drop_before(self.generation)
        self._acks.clear()
        log.warning("disconnected from broker (%s); %d uncommitted messages will be redelivered", reason, dropped)

    def _on_publish(self, mid: int, topic: str, payload: bytes, retained: bool) -> None:
        # Never raises, never blocks: the database work happens in the writer thread.
        self._buffer.put(Pending(self.generation, mid, topic, payload, time.monotonic(), datetime.now(UTC), retained))

    def _send_acks(self) -> None:
        while self._acks:
            batch = self._acks.popleft()
            self.client.ack_many([p.mid for p in batch if p.generation == self.generation and p.mid])

    def _can_read(self) -> bool:
        if not self._reading:
            return False
        count, size = self._buffer.size()
        return count < self._max_pending and size < self._max_pending_bytes

    def _connect(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            try:
                self.client.connect(self._url.host, self._url.port, keepalive=self._keepalive)
                return
            except OSError as exc:
                log.warning("cannot reach broker %s:%s (%s); retrying in %.1fs", self._url.host, self._url.port,
                            exc, backoff)
                self._stop.wait(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2) * random.uniform(0.8, 1.2)

    def _run(self) -> None:
        client = self.client
        self._connect()
        while not self._stop.is_set():
            sock = client.socket()
            if sock is None:
                self._connect()
                continue
            self._send_acks()
            readable = [sock] if self._can_read() else []
            writable = [sock] if client.want_write() else []
            try:
                r, w, _ = select.select(readable, writable, [], TICK_S)
            except (OSError, ValueError):
                r, w = [], []
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            if r:
                rc = client.loop_read()
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and (w or client.want_write()):
                rc = client.loop_write()
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = client.loop_misc()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and client.socket() is None:
                self._stop.wait(BACKOFF_START_S)
        self._send_acks()
        client.loop_write()
        client.disconnect()
        metrics.MQTT_CONNECTED.set(0)
