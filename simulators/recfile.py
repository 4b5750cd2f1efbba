"""The recording file (``.iocrec``): a writer, and a reader that keeps what it can of a damaged file.

Format: a gzip stream holding the 8-byte magic ``IOCREC1\\n`` and then one record per message::

    >d   receive time, epoch seconds (float64)
    >B   flags: bit 0 retain, bits 1–2 QoS
    >H   topic length in bytes (UTF-8)
    >I   payload length in bytes
         topic bytes, payload bytes (verbatim: malformed payloads are kept as they were)

Length-prefixed binary keeps payloads byte-exact and costs ~15 bytes per message before compression.
The writer's ``flush`` makes everything so far decompressible from the file (gzip sync flush). The reader
decompresses incrementally, so a file cut anywhere (or corrupt from some byte on) still yields every complete
record before the damage, then raises :class:`RecordingError` saying where and why.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAGIC = b"IOCREC1\n"
_HEADER = struct.Struct(">dBHI")
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
