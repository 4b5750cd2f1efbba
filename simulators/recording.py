"""Record what crosses the broker, and replay it at N× speed.

File format (``.iocrec``, any name works): a gzip stream holding the 8-byte magic ``IOCREC1\\n`` and then one
record per message::

    >d   receive time, epoch seconds (float64)
    >B   flags: bit 0 retain, bits 1–2 QoS
    >H   topic length in bytes (UTF-8)
    >I   payload length in bytes
         topic bytes, payload bytes (verbatim: malformed payloads are kept as they were)

Length-prefixed binary keeps payloads byte-exact and costs ~15 bytes per message before compression.
The recorder sync-flushes the gzip stream to the file every ``FLUSH_EVERY_S``, so a crash (kill -9, power) loses
at most that much; the reader decompresses incrementally, so a file cut anywhere (or corrupt from some byte on)
still yields every complete record before the damage, then raises :class:`RecordingError` saying where and why.

Replay preserves the relative timing divided by the speed and publishes at QoS 1, never retained unless asked
(a replayed ``offline`` must not become the broker's current state of a device). With ``shift_to_now`` every
``dateObserved`` moves by one offset so that the newest reading lands at now (ISO strings keep their UTC offset;
epoch milliseconds stay integers). Without the shift a replay is byte-identical to what was recorded, so ingest
stores nothing twice. With a :class:`~simulators.sandbox.Sandbox` topics and ``deviceId`` fields move to the
sandbox city and its ``SIM-`` device ids.
"""

from __future__ import annotations

import gzip
import math
import queue
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
import paho.mqtt.client as mqtt

from ioc.settings import MqttUrl
from simulators.mqtt import Connection, start_all

if TYPE_CHECKING:
    from simulators.sandbox import Sandbox

MAGIC = b"IOCREC1\n"
_HEADER = struct.Struct(">dBHI")
# Replay sleeps in slices this long at most, so progress stays live during long gaps.
MAX_SLEEP_S = 0.25
# The recorder makes what it wrote readable (gzip sync flush + write to the OS) this often: a crash loses at most
# this much. Each flush costs a few bytes and ends a deflate block, negligible at two a second.
FLUSH_EVERY_S = 0.5
# Compressed bytes read per step: small enough that a corrupt spot costs little re-reading.
_CHUNK = 64 * 1024
# MQTT caps a payload at 256 MiB; a header claiming more is damage, not data.
_MAX_PAYLOAD = 256 << 20


class RecordingError(ValueError):
    """The file is not a recording, or is damaged; ``records`` complete records came before the damage."""

    def __init__(self, message: str, records: int = 0) -> None:
        super().__init__(message)
        self.records = records


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

    def flush(self) -> None:
        """Everything written so far becomes decompressible from the file (zlib sync flush, then write(2))."""
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Inflater:
    """Incremental gunzip that keeps what it could decompress when the input is cut short or goes bad."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = bytearray()
        self._pos = 0
        self.offset = 0  # uncompressed bytes handed out
        self.problem: str | None = None
        self._done = False

    def _decompress(self, chunk: bytes) -> bytes:
        out = bytearray()
        while chunk:
            out += self._z.decompress(chunk)
            chunk = b""
            if self._z.eof and self._z.unused_data:  # another gzip member follows
                chunk = self._z.unused_data
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return bytes(out)

    def _fill(self) -> bool:
        while not self._done:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                self._done = True
                if not self._z.eof:
                    self.problem = "the file ends mid-stream (cut short: a crashed recorder or a partial copy)"
                return False
            saved = self._z.copy()
            try:
                data = self._decompress(chunk)
            except zlib.error as exc:
                # Keep what precedes the damage: go over the chunk again in small steps up to the bad spot.
                self._z, data, step = saved, b"", 64
                for i in range(0, len(chunk), step):
                    try:
                        data += self._decompress(chunk[i:i + step])
                    except zlib.error:
                        break
                self.problem = f"corrupt compressed data ({exc})"
                self._done = True
                self._buf += data
                return bool(data)
            if data:
                self._buf += data
                return True
        return False

    def read(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n and self._fill():
            pass
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += len(out)
        self.offset += len(out)
        if self._pos > _CHUNK * 4:
            del self._buf[:self._pos]
            self._pos = 0
        return out


def read_records(path: Path) -> Iterator[Record]:
    """Every complete record in order; a damaged file raises :class:`RecordingError` after its intact part."""
    with path.open("rb") as raw:
        src = _Inflater(raw)
        if src.read(len(MAGIC)) != MAGIC:
            raise RecordingError(f"{path}: not an ioc sim recording (bad magic)"
                                 + (f": {src.problem}" if src.problem else ""))
        n = 0

        def damaged(what: str) -> RecordingError:
            why = src.problem or "the file ends inside a record"
            return RecordingError(f"{path}: stopped after {n} complete records: {what} at uncompressed byte "
                                  f"{record_at}: {why}", n)

        while True:
            record_at = src.offset
            head = src.read(_HEADER.size)
            if not head:
                if src.problem:
                    raise damaged("no more records")
                return
            if len(head) < _HEADER.size:
                raise damaged(f"record {n + 1}'s header is cut short")
            t, flags, tlen, plen = _HEADER.unpack(head)
            if flags > 7 or plen > _MAX_PAYLOAD or not math.isfinite(t):
                src.problem = src.problem or f"bad header (flags {flags}, payload length {plen}, time {t})"
                raise damaged(f"record {n + 1} is corrupt")
            body = src.read(tlen + plen)
            if len(body) < tlen + plen:
                raise damaged(f"record {n + 1} is cut short")
            try:
                topic = body[:tlen].decode()
            except UnicodeDecodeError:
                src.problem = src.problem or "its topic is not UTF-8"
                raise damaged(f"record {n + 1} is corrupt") from None
            yield Record(t, topic, body[tlen:], (flags >> 1) & 3, bool(flags & 1))
            n += 1


def scan(path: Path) -> tuple[int, RecordingError | None]:
    """How many complete records the file holds, and what stopped the reading early (None: intact)."""
    n = 0
    try:
        for _ in read_records(path):
            n += 1
    except RecordingError as exc:
        return n, exc
    return n, None


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
