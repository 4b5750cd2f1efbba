"""Shared pieces of the benchmarks: a real broker and database, an ingest process, a fast publisher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ioc.db.migrate import migrate  # noqa: E402
from tests.support.broker import MosquittoBroker  # noqa: E402
from tests.support.databases import create_database, drop_database  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SERVER = os.environ.get("IOC_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
CITY = "dien-bien-phu"


def status(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


@contextmanager
def database(storage: str) -> Iterator[str]:
    dsn = create_database(SERVER, prefix="ioc_bench")
    try:
        report = migrate(dsn, storage)
        status(f"database {dsn.rsplit('/', 1)[1]}: storage path {report.storage_path}")
        yield dsn
    finally:
        drop_database(SERVER, dsn)


def import_lamps(dsn: str, count: int) -> list[str]:
    ids = [f"BL{i:05d}" for i in range(count)]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY ioc.devices (device_id, family, kind, city, report_interval_s) FROM STDIN") as copy:
            for device_id in ids:
                copy.write_row((device_id, "lighting", "streetlight", CITY, 600))
    return ids


class IngestProcess:
    def __init__(self, dsn: str, mqtt_url: str, worker: int = 0, extra_env: dict[str, str] | None = None) -> None:
        self.metrics_port = free_port()
        env = dict(os.environ, IOC_DATABASE_URL=dsn, IOC_MQTT_URL=mqtt_url, IOC_INGEST_WORKER=str(worker),
                   IOC_INGEST_METRICS_PORT=str(self.metrics_port), **(extra_env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def wait_connected(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any("subscribed to" in line for line in self.log):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ingest did not connect:\n" + "".join(self.log[-20:]))
            time.sleep(0.05)

    def metrics(self) -> dict[str, float]:
        """The ioc_ingest_* samples of this worker, by name with labels."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("ioc_ingest_"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


class Publisher:
    """QoS 1 publisher that never queues more than `window` messages (paho's message ids are 16-bit and its
    in-flight bookkeeping scans the queue on each PUBACK, so a deep queue collapses its rate)."""

    def __init__(self, host: str, port: int, client_id: str = "bench-pub", window: int = 1000) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(window)
        self._window = threading.Semaphore(window)
        self._size = window
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_publish(self, *args: object) -> None:
        self.acked += 1
        self._window.release()

    def publish_all(self, messages: Iterable[tuple[str, bytes]]) -> int:
        sent = 0
        for topic, payload in messages:
            self._window.acquire()
            self.client.publish(topic, payload, qos=1)
            sent += 1
        for _ in range(self._size):
            self._window.acquire()
        for _ in range(self._size):
            self._window.release()
        return sent

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def lamp_payload(ts_ms: int, i: int) -> dict[str, object]:
    return {"dateObserved": ts_ms, "powerState": "on", "illuminanceLevel": 0.8, "powerConsumption": 48.0 + i % 7,
            "voltage": 229.5, "current": 0.21, "energyConsumed": 1000.0 + i * 0.01, "status": "ok"}


def encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
