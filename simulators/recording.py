"""Record what crosses the broker, and replay it at N× speed.

The file format and its damage-tolerant reader are in :mod:`simulators.recfile`. The recorder sync-flushes the
file every ``FLUSH_EVERY_S``, so a crash (kill -9, power) loses at most that much.

Replay preserves the relative timing divided by the speed and publishes at QoS 1, never retained unless asked
(a replayed ``offline`` must not become the broker's current state of a device). With ``shift_to_now`` every
``dateObserved`` moves by one offset so that the newest reading lands at now (ISO strings keep their UTC offset;
epoch milliseconds stay integers). Without the shift a replay is byte-identical to what was recorded, so ingest
stores nothing twice. With a :class:`~simulators.sandbox.Sandbox` topics and ``deviceId`` fields move to the
sandbox city and its ``SIM-`` device ids. A damaged recording is replayed up to the damage.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import paho.mqtt.client as mqtt

from ioc.settings import MqttUrl
from simulators.mqtt import Connection, start_all
from simulators.recfile import MAGIC, Record, RecordingError, RecordWriter, read_records, scan

if TYPE_CHECKING:
    from simulators.sandbox import Sandbox

# Replay sleeps in slices this long at most, so progress stays live during long gaps.
MAX_SLEEP_S = 0.25
# The recorder makes what it wrote readable (gzip sync flush + write to the OS) this often: a crash loses at most
# this much. Each flush costs a few bytes and ends a deflate block, negligible at two a second.
FLUSH_EVERY_S = 0.5


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
    last_progress = last_flush = t0
    with RecordWriter(out) as writer:
        try:
            while True:
                if writer.count and time.monotonic() - last_flush >= FLUSH_EVERY_S:
                    writer.flush()
                    last_flush = time.monotonic()
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                if count is not None and summary.messages >= count:
                    break
                if stop is not None and stop.is_set():
                    break
                try:
                    rec = inbox.get(timeout=min(0.1, FLUSH_EVERY_S))
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
    """The latest ``dateObserved`` among a recording's intact records (epoch seconds), None when none has one."""
    newest: float | None = None
    for rec in _intact(path):
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


def _intact(path: Path) -> Iterator[Record]:
    try:
        yield from read_records(path)
    except RecordingError:
        return


@dataclass(slots=True)
class ReplaySummary:
    published: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # not published, by why
    duration_s: float = 0.0
    recorded_span_s: float = 0.0
    shift_s: int = 0
    complete: bool = True  # every publish acknowledged
    damage: RecordingError | None = None  # the recording stopped early: where and why

    @property
    def total_acked(self) -> int:
        return sum(self.acked.values())


def _family(topic: str) -> str:
    parts = topic.split("/")
    return parts[3] if len(parts) > 3 else "other"


def replay(path: Path, url: MqttUrl, *, speed: float = 1.0, shift_to_now: bool = False, retain: bool = False,
           statuses: bool | None = None, sandbox: Sandbox | None = None, client_id: str = "ioc-sim-replay",
           progress: Callable[[ReplaySummary, int], None] | None = None, drain_timeout: float = 60.0,
           ) -> ReplaySummary:
    """Publish a recording at ``speed``× (0: as fast as acked), preserving relative timing.

    Nothing is published retained unless ``retain`` (then status messages are, as devices do). Status messages
    are replayed into a sandbox, but not by default into a real city, where a replayed ``offline`` would
    override the device's current state (``statuses`` decides). A damaged recording is replayed up to the
    damage, which ``damage`` then describes.
    """
    summary = ReplaySummary()
    replay_statuses = sandbox is not None if statuses is None else statuses
    if shift_to_now:
        newest = newest_reading(path)
        summary.shift_s = int(time.time() - newest) if newest is not None else 0
    conn = Connection(url, client_id)
    start_all([conn])
    wall0 = time.monotonic()
    first: float | None = None
    last_progress = wall0
    try:
        for rec in _read_noting_damage(path, summary):
            if first is None:
                first = rec.time
            summary.recorded_span_s = rec.time - first
            if speed > 0:
                due = wall0 + (rec.time - first) / speed
                while (delay := due - time.monotonic()) > 0:
                    time.sleep(min(delay, MAX_SLEEP_S))
            is_status = rec.topic.endswith("/status")
            if is_status and not replay_statuses:
                summary.skipped["status"] += 1
                continue
            topic, payload = rec.topic, rec.payload
            if sandbox is not None:
                moved = sandbox.topic(topic)
                if moved is None:
                    summary.skipped["outside the topic layout"] += 1
                    continue
                topic, payload = moved, sandbox.payload(payload)
            if summary.shift_s:
                payload = shift_payload(payload, summary.shift_s)
            conn.publish(topic, payload, retain and is_status, _family(topic))
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


def _read_noting_damage(path: Path, summary: ReplaySummary) -> Iterator[Record]:
    try:
        yield from read_records(path)
    except RecordingError as exc:
        summary.damage = exc


__all__ = ["MAGIC", "Record", "RecordSummary", "RecordWriter", "RecordingError", "ReplaySummary", "newest_reading",
           "read_records", "record", "replay", "scan", "shift_payload"]
