"""The ledger of received, not yet acknowledged messages, shared by the network, decode and database stages."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

# A waiting decode stage looks at the stop flag at least this often, so SIGTERM never waits out a long flush.
STOP_CHECK_S = 0.1


@dataclass(slots=True)
class Pending:
    generation: int  # the connection it arrived on; a PUBACK is valid only on that connection
    mid: int
    topic: str
    payload: bytes
    received: float  # time.monotonic()
    received_at: datetime
    retained: bool = False  # a retained message replayed on subscribe: a snapshot, not news


class PendingBuffer:
    """The ledger of unacknowledged messages, in arrival order: queued (not yet taken by the decode stage) and
    held (taken, in the pipeline until their PUBACKs are queued). Thread-safe."""

    def __init__(self, wake_at: int = 1, wake_bytes: int = 1) -> None:
        self.wake_at, self.wake_bytes = wake_at, wake_bytes
        self._items: deque[Pending] = deque()
        self._bytes = 0
        self._held: deque[list[Pending]] = deque()
        self._held_count = self._held_bytes = 0
        self._cond = threading.Condition()

    def put(self, item: Pending) -> None:
        with self._cond:
            self._items.append(item)
            self._bytes += len(item.payload)
            # Wake the writer only when it has something to start on or a full batch: waking it per message
            # makes the threads trade the GIL tens of thousands of times a second.
            if len(self._items) == 1 or len(self._items) >= self.wake_at or self._bytes >= self.wake_bytes:
                self._cond.notify()

    def take(self, max_items: int, max_bytes: int, max_wait_s: float, stop: threading.Event) -> list[Pending]:
        """Up to max_items / max_bytes (at least one message), returning early when full; waits at most
        max_wait_s after the first item arrives. The batch is held until ``settle``."""
        with self._cond:
            while not self._items and not stop.is_set():
                self._cond.wait(0.05)
            if self._items:
                deadline = time.monotonic() + max_wait_s
                while len(self._items) < max_items and self._bytes < max_bytes and not stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, STOP_CHECK_S))
            out: list[Pending] = []
            size = 0
            while self._items and len(out) < max_items and (not out or size + len(self._items[0].payload) <= max_bytes):
                item = self._items.popleft()
                size += len(item.payload)
                out.append(item)
            self._bytes -= size
            if out:
                self._held.append(out)
                self._held_count += len(out)
                self._held_bytes += size
            return out

    def settle(self) -> None:
        """The oldest held batch is done with (acknowledged, or abandoned to redelivery)."""
        with self._cond:
            batch = self._held.popleft()
            self._held_count -= len(batch)
            self._held_bytes -= sum(len(p.payload) for p in batch)

    def queued(self) -> int:
        return len(self._items)

    def size(self) -> tuple[int, int]:
        """Unacknowledged messages and bytes, queued and held."""
        with self._cond:
            return len(self._items) + self._held_count, self._bytes + self._held_bytes

    def oldest(self) -> float | None:
        with self._cond:
            if self._held:
                return self._held[0][0].received
            return self._items[0].received if self._items else None
