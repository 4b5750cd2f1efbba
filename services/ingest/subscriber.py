"""The connection manager: a persistent QoS 1 session whose messages are acknowledged only after commit.

Threading: one network thread owns the paho client (paho is not thread-safe for concurrent writes). Its
message callback only appends to the pending buffer; the database stage hands back what it committed
through ``ack()``, and the network thread sends those PUBACKs. MQTT 3.1.1: the subscriber needs nothing of
MQTT 5, and paho's MQTT 5 path parses properties on every PUBLISH (`python -m bench.mqtt_receive_bench`
compares paho's receive paths with this one).

Disconnects: every connection has a generation number. Messages received on an older connection still go
through the pipeline and are committed (storage is idempotent), but their PUBACKs are dropped: a packet id
is only meaningful on the connection it arrived on. The broker redelivers them on the new connection when
it kept our session; when it did not (``session_present`` false on a reconnect), the warning and
``ioc_ingest_mqtt_sessions_lost_total`` say that messages queued for us meanwhile may be gone.
"""

from __future__ import annotations

import logging
import random
import select
import ssl
import threading
import time
from collections import deque
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ioc.contract.topics import subscription_filter
from ioc.settings import MqttUrl
from services.ingest import faults, metrics
from services.ingest.mqtt_client import IngestClient
from services.ingest.pending import Pending, PendingBuffer
from services.ingest.stages import supervised_thread

log = logging.getLogger(__name__)

# Reconnect backoff: start fast (a broker restart takes a second), cap so a long outage costs little.
BACKOFF_START_S, BACKOFF_MAX_S = 0.5, 15.0
# Network loop tick: bounds how long a committed batch waits for its PUBACKs to be sent.
TICK_S = 0.005


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
        self.generation = 0  # incremented on every disconnect; Pending.generation says which connection
        self.connects = 0
        self.connected = threading.Event()
        self._acks: deque[list[Pending]] = deque()
        self._stop = threading.Event()
        self._reading = True
        self._thread = supervised_thread("network", self._run, daemon=True)

        self.client = IngestClient(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
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

    def running(self) -> bool:
        return self._thread.is_alive()

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
        self.connects += 1
        if self.connects > 1 and not flags.session_present:
            metrics.MQTT_SESSIONS_LOST.inc()
            log.warning("reconnected, but the broker kept no session for %s: messages queued for it while it was "
                        "away may be lost (broker restarted without persistence, or the session expired)",
                        client._client_id.decode())
        client.subscribe(self.subscription, qos=1)
        self.connected.set()
        log.info("connected to %s:%s as %s (session present: %s), subscribed to %s", self._url.host, self._url.port,
                 client._client_id.decode(), flags.session_present, self.subscription)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
        self.connected.clear()
        metrics.MQTT_CONNECTED.set(0)
        self.generation += 1
        self._acks.clear()  # all of an older connection: their PUBACKs would be skipped anyway
        log.warning("disconnected from broker (%s); the %d messages received and not yet acknowledged are still "
                    "committed, without PUBACKs (the broker redelivers them if it keeps the session)", reason,
                    self._buffer.size()[0])

    def _on_publish(self, mid: int, topic: str, payload: bytes, retained: bool) -> None:
        # Never blocks: the database work happens in the database stage.
        if faults.ACTIVE:
            faults.check("network", topic)
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
