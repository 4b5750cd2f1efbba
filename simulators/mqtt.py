"""MQTT connections for the simulators: paho-mqtt 2, QoS 1, a cap on outstanding publishes, PUBACK counting.

paho's message ids are 16-bit and its in-flight bookkeeping scans the whole outgoing queue on every
PUBACK, so queueing tens of thousands of QoS 1 publishes makes it quadratic (and wraps the ids).
:class:`Connection` therefore blocks the caller once ``MAX_OUTSTANDING`` publishes are unacknowledged;
each ``on_publish`` releases one slot and counts the acknowledgement for the message's family.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc.settings import MqttUrl

# Outstanding QoS 1 publishes per connection: enough to keep the socket busy, far below paho's 65 535 ids.
MAX_OUTSTANDING = 1000
CONNECT_TIMEOUT_S = 15.0
KEEPALIVE_S = 30
DRAIN_TIMEOUT_S = 60.0
# How long a clean disconnect may take before the socket is closed anyway.
DISCONNECT_TIMEOUT_S = 2.0


class MqttError(RuntimeError):
    """The broker refused or dropped a connection the simulator needs."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes = b"offline"


class Connection:
    """One paho client with its own network thread, a publish cap and per-family ack counts."""

    def __init__(self, url: MqttUrl, client_id: str, will: Will | None = None,
                 on_message: Callable[[mqtt.MQTTMessage], None] | None = None) -> None:
        self.client_id = client_id
        self.url = url
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                  clean_session=True)
        self.client.max_inflight_messages_set(MAX_OUTSTANDING)
        # Never let paho queue beyond our own cap (0 would be unlimited).
        self.client.max_queued_messages_set(MAX_OUTSTANDING * 2)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            self.client.tls_set()
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=1, retain=True)
        self._slots = threading.BoundedSemaphore(MAX_OUTSTANDING)
        self._lock = threading.Lock()
        self._families: dict[int, str] = {}
        self._early: set[int] = set()  # PUBACKs that arrived before publish() returned the mid
        self.published: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.connected = threading.Event()
        self.error: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        if on_message is not None:
            self.client.on_message = lambda _c, _u, msg: on_message(msg)

    # -- callbacks: never raise, never block --------------------------------------------------------------

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.error = f"{self.client_id}: connection refused: {reason}"
        else:
            self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        self.connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: object, _p: object) -> None:
        with self._lock:
            family = self._families.pop(mid, None)
            if family is None:
                self._early.add(mid)
            else:
                self.acked[family] += 1
        if family is not None:
            self._slots.release()

    # -- use ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.url.host, self.url.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        if not self.connected.wait(timeout):
            raise MqttError(self.error or f"{self.client_id}: no connection to {self.url.host}:{self.url.port} "
                            f"within {timeout:.0f} s")

    def publish(self, topic: str, payload: bytes, retain: bool, family: str, qos: int = 1) -> None:
        """Publish at QoS 1, blocking while MAX_OUTSTANDING publishes await their PUBACK."""
        while not self._slots.acquire(timeout=1.0):
            if self.error:
                raise MqttError(self.error)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            self._slots.release()
            raise MqttError(f"{self.client_id}: publish to {topic} failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            self.published[family] += 1
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked[family] += 1
                early = True
            else:
                self._families[info.mid] = family
                early = False
        if early:
            self._slots.release()

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Copies of (published, acknowledged) per family."""
        with self._lock:
            return Counter(self.published), Counter(self.acked)

    def outstanding(self) -> int:
        with self._lock:
            return len(self._families)

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until every publish is acknowledged (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        while self.outstanding():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Clean DISCONNECT (so the broker does not fire the will), then free the sockets now.

        paho closes its wake-up socket pair only when the client is garbage-collected, and the callbacks
        make a reference cycle, so a run that opens 120 connections would leak 240 descriptors until the
        next GC; ``_reset_sockets`` is paho's own cleanup, called here instead of waiting for ``__del__``.
        """
        if self.connected.is_set():
            self.client.disconnect()
            deadline = time.monotonic() + DISCONNECT_TIMEOUT_S
            while self.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.005)
        self.client.loop_stop()
        self.client._reset_sockets()


class Link(Protocol):
    """What the publisher needs of a connection: paho's :class:`Connection` or ``wire.LeanConnection``."""

    client_id: str

    def start(self) -> None: ...
    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_S) -> None: ...
    def publish(self, topic: str, payload: bytes, retain: bool, family: str, qos: int = 1) -> None: ...
    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool: ...
    def stop(self) -> None: ...
    def counts(self) -> tuple[Counter[str], Counter[str]]: ...


def start_all(conns: Sequence[Link], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Connect many clients in parallel; raise if any is not up within ``timeout``."""
    for c in conns:
        c.start()
    deadline = time.monotonic() + timeout
    try:
        for c in conns:
            c.wait_connected(max(0.1, deadline - time.monotonic()))
    except MqttError:
        for c in conns:  # leave no network threads behind
            c.stop()
        raise


def totals(conns: Sequence[Link]) -> tuple[Counter[str], Counter[str]]:
    published: Counter[str] = Counter()
    acked: Counter[str] = Counter()
    for c in conns:
        p, a = c.counts()
        published.update(p)
        acked.update(a)
    return published, acked
