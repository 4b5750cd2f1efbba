"""A lean MQTT 3.1.1 QoS 1 publisher: raw packets over one socket, a window of in-flight packet ids.

paho spends ~140 µs of Python per QoS 1 publish (message objects, its own queue, a lock and a wake-up
socket per call), which capped a back-fill at ≈ 7 000 msg/s. This client does only what a publisher
needs: it encodes PUBLISH packets into a buffer, writes the buffer in large ``sendall`` calls, and a reader
thread counts PUBACKs by packet id. Every publish is counted by its PUBACK, per device family, exactly like
:class:`simulators.mqtt.Connection` (same ``published``/``acked`` counters, ``drain``, ``stop``), so the
publisher's ``Router`` can use either.

Packet ids are 16-bit: at most ``WINDOW`` publishes are unacknowledged at any time; ``publish`` flushes and
waits when the window is full. Mosquitto acknowledges QoS 1 in order, so the next id is nearly always free.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import threading
import time
from collections import Counter

from ioc.settings import MqttUrl
from simulators.mqtt import CONNECT_TIMEOUT_S, KEEPALIVE_S, MqttError, Will

# Unacknowledged publishes per connection: deep enough to hide the round trip at tens of thousands of
# messages per second, well below the 65 535 packet ids (and mosquitto's max_inflight_messages 20 000).
WINDOW = 16_000
# Bytes buffered before a sendall: one syscall for hundreds of small messages.
FLUSH_BYTES = 256 * 1024
RECV_CHUNK = 64 * 1024
_PUBACK = 0x40
_CONNACK = 0x20
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"
_U16 = struct.Struct(">H")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return _U16.pack(len(b)) + b


def connect_packet(client_id: str, keepalive: int, username: str | None = None, password: str | None = None,
                   will: Will | None = None, clean_session: bool = True) -> bytes:
    flags = 0x02 if clean_session else 0
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | (1 << 3) | 0x20  # will, will QoS 1, will retain
        payload += _string(will.topic) + _string(will.payload)
    if username:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    variable = _string("MQTT") + bytes((4, flags)) + _U16.pack(keepalive)
    body = variable + payload
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, pid: int, retain: bool) -> bytes:
    """A QoS 1 PUBLISH (DUP 0)."""
    n = 2 + len(topic) + 2 + len(payload)
    return b"".join((b"\x33" if retain else b"\x32", _varint(n), _U16.pack(len(topic)), topic, _U16.pack(pid),
                     payload))


class LeanConnection:
    """One MQTT connection for publishing at QoS 1; the same counters and life cycle as ``mqtt.Connection``."""

    def __init__(self, url: MqttUrl, client_id: str, will: Will | None = None, window: int = WINDOW) -> None:
        self.url = url
        self.client_id = client_id
        self.will = will
        self.window = window
        self.published: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.error: str | None = None
        self._lock = threading.Lock()  # counters and the in-flight table
        self._room = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._inflight: dict[int, str] = {}
        self._next_pid = 0
        self._out = bytearray()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._closing = False
        self._last_send = time.monotonic()
        self.connected = threading.Event()

    # -- life cycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the socket and send CONNECT; :meth:`wait_connected` waits for the CONNACK."""
        try:
            sock = socket.create_connection((self.url.host, self.url.port), timeout=CONNECT_TIMEOUT_S)
            if self.url.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.url.host)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(connect_packet(self.client_id, KEEPALIVE_S, self.url.username, self.url.password,
                                        self.will))
        except OSError as exc:
            self.error = f"{self.client_id}: no connection to {self.url.host}:{self.url.port}: {exc}"
            return
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, name=f"lean-{self.client_id}", daemon=True)
        self._reader.start()

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        if not self.connected.wait(timeout) or self.error:
            raise MqttError(self.error or f"{self.client_id}: no CONNACK from {self.url.host}:{self.url.port} "
                            f"within {timeout:.0f} s")

    def stop(self) -> None:
        """Send what is buffered and a DISCONNECT (no will), close the socket, join the reader."""
        self._closing = True
        sock = self._sock
        if sock is not None:
            # A connection already lost has its ``error`` set; closing it needs no second report.
            with contextlib.suppress(OSError, MqttError):
                self.flush()
                with self._send_lock:
                    sock.sendall(_DISCONNECT)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if sock is not None:
            sock.close()
        self._sock = None

    # -- publishing ----------------------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, retain: bool, family: str, qos: int = 1) -> None:
        """Queue a QoS 1 publish (sent at the next flush); waits while the window of unacked ids is full."""
        with self._lock:
            while len(self._inflight) >= self.window:
                if self.error:
                    raise MqttError(self.error)
                self._lock.release()
                try:
                    self.flush()  # the broker cannot ack what it has not received
                finally:
                    self._lock.acquire()
                if len(self._inflight) >= self.window:
                    self._room.wait(timeout=1.0)
            if self.error:
                raise MqttError(self.error)
            pid = self._next_pid
            while True:
                pid = pid % 65535 + 1
                if pid not in self._inflight:
                    break
            self._next_pid = pid
            self._inflight[pid] = family
            self.published[family] += 1
        self._out += publish_packet(topic.encode(), payload, pid, retain)
        if len(self._out) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._out:
            return
        sock = self._sock
        if sock is None:
            raise MqttError(self.error or f"{self.client_id}: not connected")
        data, self._out = self._out, bytearray()
        try:
            with self._send_lock:
                sock.sendall(data)
                self._last_send = time.monotonic()
        except OSError as exc:
            self.error = f"{self.client_id}: connection lost while publishing: {exc}"
            raise MqttError(self.error) from None

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Copies of (published, acknowledged) per family."""
        with self._lock:
            return Counter(self.published), Counter(self.acked)

    def outstanding(self) -> int:
        with self._lock:
            return len(self._inflight)

    def drain(self, timeout: float = 60.0) -> bool:
        """Flush, then wait until every publish is acknowledged (True) or the timeout passes (False)."""
        try:
            self.flush()
        except MqttError:
            return False
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._inflight:
                left = deadline - time.monotonic()
                if left <= 0 or self.error:
                    return False
                self._room.wait(timeout=min(left, 0.5))
        return True

    # -- the reader thread: CONNACK, PUBACKs, keep-alive -------------------------------------------------------

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = bytearray()
        try:
            while not self._closing:
                ready, _, _ = select.select([sock], [], [], 1.0)
                if not ready:
                    if self.connected.is_set() and time.monotonic() - self._last_send > KEEPALIVE_S / 2:
                        with self._send_lock:
                            sock.sendall(_PINGREQ)
                            self._last_send = time.monotonic()
                    continue
                chunk = sock.recv(RECV_CHUNK)
                if not chunk:
                    raise OSError("closed by the broker")
                buf += chunk
                self._parse(buf)
        except (OSError, ValueError) as exc:
            if not self._closing:
                self.error = f"{self.client_id}: connection lost: {exc}"
        finally:
            with self._lock:
                self._room.notify_all()
            self.connected.set()  # wake a waiter; ``error`` tells it what happened

    def _parse(self, buf: bytearray) -> None:
        i, n = 0, len(buf)
        acked: list[int] = []
        while i + 2 <= n:
            kind = buf[i] & 0xF0
            length, shift, j, complete = 0, 0, i + 1, False
            while j < n:  # remaining length: a variable byte integer of at most 4 bytes
                b = buf[j]
                j += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    complete = True
                    break
                if shift > 21:
                    raise ValueError("malformed remaining length")
            if not complete or j + length > n:
                break  # the rest of this packet is still on its way
            if kind == _PUBACK:
                acked.append(_U16.unpack_from(buf, j)[0])
            elif kind == _CONNACK:
                rc = buf[j + 1]
                if rc:
                    self.error = f"{self.client_id}: connection refused (CONNACK return code {rc})"
                self.connected.set()
            i = j + length
        del buf[:i]
        if acked:
            with self._lock:
                inflight = self._inflight
                for pid in acked:
                    family = inflight.pop(pid, None)
                    if family is not None:
                        self.acked[family] += 1
                self._room.notify_all()
