"""Record what crosses the broker, and replay it at N× speed.

File format (``.iocrec``, any name works): a gzip stream holding the 8-byte magic ``IOCREC1\\n`` and then one
record per message::

    >d   receive time, epoch seconds (float64)
    >B   flags: bit 0 retain, bits 1–2 QoS
    >H   topic length in bytes (UTF-8)
    >I   payload length in bytes
         topic bytes, payload bytes (verbatim: malformed payloads are kept as they were)

Length-prefixed binary keeps payloads byte-exact and costs ~15 bytes per message before compression.
Replay preserves the relative timing divided by the speed, publishes at QoS 1 (status topics retained,
as the contract says), and with ``shift_to_now`` moves every ``dateObserved`` by one offset so that the
newest reading lands at now (ISO strings keep their UTC offset; epoch milliseconds stay integers).
Without the shift a replay is byte-identical to what was recorded, so ingest stores nothing twice.
"""

from __future__ import annotations

import gzip
import queue
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from ioc.settings import MqttUrl
from simulators.mqtt import Connection, start_all

MAGIC = b"IOCREC1\n"
_HEADER = struct.Struct(">dBHI")
# Replay sleeps in slices this long at most, so progress stays live during long gaps.
MAX_SLEEP_S = 0.25


class RecordingError(ValueError):
    """The file is not a recording (or is truncated)."""


@dataclass(frozen=True, slots=True)
class Record:
    time: float
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class RecordWriter:
    def __init__(self, path: Path) -> None:
        self._fh = gzip.GzipFile(path, "wb", compresslevel=6)
        self._fh.write(MAGIC)
        self.count = 0

    def write(self, rec: Record) -> None:
        topic = rec.topic.encode()
        flags = (1 if rec.retain else 0) | ((rec.qos & 3) << 1)
        self._fh.write(_HEADER.pack(rec.time, flags, len(topic), len(rec.payload)) + topic + rec.payload)
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: Path) -> Iterator[Record]:
    with gzip.open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise RecordingError(f"{path}: not an ioc sim recording (bad magic)")
        while True:
            head = fh.read(_HEADER.size)
            if not head:
                return
            if len(head) < _HEADER.size:
                raise RecordingError(f"{path}: truncated record header")
            t, flags, tlen, plen = _HEADER.unpack(head)
            body = fh.read(tlen + plen)
            if len(body) < tlen + plen:
                raise RecordingError(f"{path}: truncated record")
            yield Record(t, body[:tlen].decode(), body[tlen:], (flags >> 1) & 3, bool(flags & 1))


@dataclass(slots=True)
class RecordSummary:
    messages: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    path: str = ""


def record(url: MqttUrl, topic_filter: str, out: Path, *, duration_s: float | None = None,
           count: int | None = None, ready: threading.Event | None = None, stop: threading.Event | None = None,
           client_id: str = "ioc-sim-recorder", progress: Callable[[RecordSummary], None] | None = None,
           ) -> RecordSummary:
    """Subscribe (QoS 1) and write messages until ``duration_s`` passes, ``count`` are captured or ``stop``.

    ``ready`` is set once the subscription is acknowledged (tests start publishing then).
    """
    inbox: queue.SimpleQueue[Record] = queue.SimpleQueue()
    subscribed = threading.Event()

    def on_message(msg: mqtt.MQTTMessage) -> None:  # paho thread: enqueue only
        inbox.put(Record(time.time(), msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    conn = Connection(url, client_id, on_message=on_message)
    conn.client.on_subscribe = lambda *_a: subscribed.set()
    start_all([conn])
    conn.client.subscribe(topic_filter, qos=1)
    if not subscribed.wait(10.0):
        conn.stop()
        raise TimeoutError(f"no SUBACK for {topic_filter!r}")
    if ready is not None:
        ready.set()
    summary = RecordSummary(path=str(out))
    t0 = time.monotonic()
    last_progress = t0
    with RecordWriter(out) as writer:
        try:
            while True:
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                if count is not None and summary.messages >= count:
                    break
                if stop is not None and stop.is_set():
                    break
                try:
                    rec = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                writer.write(rec)
                summary.messages += 1
                summary.bytes += len(rec.payload)
                if progress and time.monotonic() - last_progress > 1.0:
                    last_progress = time.monotonic()
                    summary.duration_s = last_progress - t0
                    progress(summary)
        finally:
            conn.stop()
            while count is None or summary.messages < count:  # what arrived before the stop
                try:
                    rec = inbox.get_nowait()
                except queue.Empty:
                    break
                writer.write(rec)
                summary.messages += 1
                summary.bytes += len(rec.payload)
    summary.duration_s = time.monotonic() - t0
    return summary


# -- replay -------------------------------------------------------------------------------------------------


def _date_fields(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        if "dateObserved" in doc:
            yield doc
    elif isinstance(doc, list):
        for item in doc:
            if isinstance(item, dict) and "dateObserved" in item:
                yield item


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value / 1000.0
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo else None
    return None


def newest_reading(path: Path) -> float | None:
    """The latest ``dateObserved`` in a recording (epoch seconds), None when nothing has one."""
    newest: float | None = None
    for rec in read_records(path):
        try:
            doc = orjson.loads(rec.payload)
        except orjson.JSONDecodeError:
            continue
        for item in _date_fields(doc):
            t = _epoch(item["dateObserved"])
            if t is not None and (newest is None or t > newest):
                newest = t
    return newest


def shift_payload(payload: bytes, offset_s: int) -> bytes:
    """Move every ``dateObserved`` by ``offset_s``; payloads that do not parse pass through unchanged."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
    changed = False
    for item in _date_fields(doc):
        value = item["dateObserved"]
        if isinstance(value, int) and not isinstance(value, bool):
            item["dateObserved"] = value + offset_s * 1000
            changed = True
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                continue
            text = (parsed + timedelta(seconds=offset_s)).isoformat()
            item["dateObserved"] = text[:-6] + "Z" if value.endswith("Z") and text.endswith("+00:00") else text
            changed = True
    return orjson.dumps(doc) if changed else payload


@dataclass(slots=True)
class ReplaySummary:
    published: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    duration_s: float = 0.0
    recorded_span_s: float = 0.0
    shift_s: int = 0
    complete: bool = True

    @property
    def total_acked(self) -> int:
        return sum(self.acked.values())


def _family(topic: str) -> str:
    parts = topic.split("/")
    return parts[3] if len(parts) > 3 else "other"


def replay(path: Path, url: MqttUrl, *, speed: float = 1.0, shift_to_now: bool = False,
           client_id: str = "ioc-sim-replay", progress: Callable[[ReplaySummary, int], None] | None = None,
           drain_timeout: float = 60.0) -> ReplaySummary:
    """Publish a recording at ``speed``× (0: as fast as acked), preserving relative timing."""
    summary = ReplaySummary()
    if shift_to_now:
        newest = newest_reading(path)
        summary.shift_s = int(time.time() - newest) if newest is not None else 0
    conn = Connection(url, client_id)
    start_all([conn])
    wall0 = time.monotonic()
    first: float | None = None
    last_progress = wall0
    try:
        for rec in read_records(path):
            if first is None:
                first = rec.time
            summary.recorded_span_s = rec.time - first
            if speed > 0:
                due = wall0 + (rec.time - first) / speed
                while (delay := due - time.monotonic()) > 0:
                    time.sleep(min(delay, MAX_SLEEP_S))
            payload = shift_payload(rec.payload, summary.shift_s) if summary.shift_s else rec.payload
            retain = rec.retain or rec.topic.endswith("/status")
            conn.publish(rec.topic, payload, retain, _family(rec.topic))
            summary.messages += 1
            if progress and time.monotonic() - last_progress > 0.2:
                last_progress = time.monotonic()
                progress(summary, summary.messages)
    finally:
        summary.complete = conn.drain(drain_timeout)
        conn.stop()
        with conn._lock:
            summary.published = Counter(conn.published)
            summary.acked = Counter(conn.acked)
        summary.duration_s = time.monotonic() - wall0
    return summary


def count_records(path: Path) -> int:
    return sum(1 for _ in read_records(path))
