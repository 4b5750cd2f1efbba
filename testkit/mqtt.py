"""A QoS 1 publisher for tests and benchmarks that counts what the broker acknowledged."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Publisher:
    """Never queues more than ``window`` messages: paho's message ids are 16-bit and its in-flight bookkeeping
    scans the whole queue on every PUBACK, so a deep queue collapses its rate (and past 65 535 reuses ids)."""

    def __init__(self, host: str, port: int, client_id: str = "test-pub", window: int = 1000) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(window)
        self._window = threading.Semaphore(window)
        self._size = window
        self._lock = threading.Lock()
        self.acked = 0
        self._connected = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda *a: self._connected.set()
        # connect_async + loop_start: plain connect() before loop_start leaks paho's wake-up socket pair.
        self.client.connect_async(host, port)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise ConnectionError(f"publisher could not connect to {host}:{port}")

    def _on_publish(self, *args: object) -> None:
        with self._lock:
            self.acked += 1
        self._window.release()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._window.acquire()
        self.client.publish(topic, payload, qos=1, retain=retain)

    def publish_all(self, messages: Iterable[tuple[str, bytes]]) -> int:
        sent = 0
        for topic, payload in messages:
            self.publish(topic, payload)
            sent += 1
        self.flush()
        return sent

    def flush(self, timeout: float = 60) -> None:
        """Wait until the broker acknowledged everything published so far."""
        for _ in range(self._size):
            if not self._window.acquire(timeout=timeout):
                raise TimeoutError("broker did not acknowledge all publishes")
        for _ in range(self._size):
            self._window.release()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client.on_publish = self.client.on_connect = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
