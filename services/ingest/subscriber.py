"""The MQTT side: a persistent QoS 1 session whose messages are acknowledged only after commit.

Threading: one network thread owns the paho client (paho is not thread-safe for concurrent writes). Its
message callback only appends to the pending buffer; the writer thread hands back what it committed
through ``ack()``, and the network thread sends those PUBACKs. MQTT 3.1.1 is used on purpose: paho parses
MQTT 5 properties on every PUBLISH, which halves the receive rate (measured: bench/ingest_bench.py notes).
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
# Packets read per loop_read call: drains the socket in one go instead of one select() per message.
READ_BURST = 5000


@dataclass(slots=True)
class Pending:
    generation: int  # the connection it arrived on; a PUBACK is valid only on that connection
    mid: int
    topic: str
    payload: bytes
    received: float  # time.monotonic()
    received_at: datetime


class PendingBuffer:
    """Messages received and not yet committed, in arrival order. Thread-safe."""

    def __init__(self) -> None:
        self._items: deque[Pending] = deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, item: Pending) -> None:
        with self._cond:
            self._items.append(item)
            self._bytes += len(item.payload)
            self._cond.notify()

    def take(self, max_items: int, max_wait_s: float, stop: threading.Event) -> list[Pending]:
        """Up to max_items, returning early when full; waits at most max_wait_s after the first item arrives."""
        with self._cond:
            while not self._items and not stop.is_set():
                self._cond.wait(0.05)
            if self._items:
                deadline = time.monotonic() + max_wait_s
                while len(self._items) < max_items and not stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            n = min(max_items, len(self._items))
            out = [self._items.popleft() for _ in range(n)]
            self._bytes -= sum(len(p.payload) for p in out)
            return out

    def drop_before(self, generation: int) -> int:
        """Forget messages of a closed connection: the broker redelivers them on the next one."""
        with self._cond:
            keep = deque(p for p in self._items if p.generation >= generation)
            dropped = len(self._items) - len(keep)
            self._items = keep
            self._bytes = sum(len(p.payload) for p in keep)
            return dropped

    def size(self) -> tuple[int, int]:
        return len(self._items), self._bytes

    def oldest(self) -> float | None:
        with self._cond:
            return self._items[0].received if self._items else None


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
        self.unacked_oldest: Callable[[], float | None] = buffer.oldest
        self._in_flight: dict[int, float] = {}  # generation-local: handed to writer, not yet acked

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=True)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

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

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Never raises, never blocks: the database work happens in the writer thread.
        self._buffer.put(Pending(self.generation, msg.mid, msg.topic, msg.payload, time.monotonic(),
                                 datetime.now(UTC)))

    def _send_acks(self) -> None:
        while self._acks:
            batch = self._acks.popleft()
            for item in batch:
                if item.generation == self.generation:
                    self.client.ack(item.mid, 1)

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
                rc = client.loop_read(READ_BURST)
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
