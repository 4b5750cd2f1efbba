"""One ingest worker: wires the subscriber, decoder and writer together and runs until SIGTERM.

Three threads, each a stage, handing batches on in order:
  network (subscriber.py): socket → pending buffer; sends PUBACKs.
  decode (main thread):    pending buffer → registry check → decoded rows.
  database:                decoded rows → COPY → COMMIT → PUBACKs queued.
The decode of batch N+1 overlaps the COPY and commit of batch N (psycopg waits on the server without the
GIL). A one-slot handoff keeps at most one decoded batch waiting, so memory stays bounded.
"""

from __future__ import annotations

import functools
import gc
import logging
import queue
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ioc.contract.topics import device_id_of
from services.ingest import metrics
from services.ingest.config import IngestSettings
from services.ingest.decode import Decoded, decode
from services.ingest.registry_cache import RegistryCache
from services.ingest.subscriber import Pending, PendingBuffer, Subscriber
from services.ingest.writer import TRANSIENT, Writer

log = logging.getLogger("ioc.ingest")

# Database retry backoff: first retry quickly (a failover takes seconds), then cap so an outage costs little.
DB_BACKOFF_START_S, DB_BACKOFF_MAX_S = 0.5, 10.0
# Health: unhealthy when the database has failed for longer than this.
DB_UNHEALTHY_AFTER_S = 30.0

Job = tuple[list[Pending], list[Decoded], datetime]


class IngestService:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.buffer = PendingBuffer(settings.ingest_batch_size, settings.ingest_batch_bytes)
        self.stopping = threading.Event()
        self.writer = Writer(settings.database_url, settings.ingest_reject_keep_bytes)
        self.registry = RegistryCache(settings.database_url)
        self.subscriber = Subscriber(settings.mqtt, settings.client_id, settings.ingest_shared_group, self.buffer,
                                     keepalive_s=settings.ingest_keepalive_s, max_pending=settings.ingest_max_pending,
                                     max_pending_bytes=settings.ingest_max_pending_bytes)
        self.db_failing_since: float | None = None
        self.last_commit: float | None = None
        self.abandoned = False  # shutdown gave up on an unreachable database
        self._handoff: queue.Queue[Job | None] = queue.Queue(maxsize=1)
        metrics.OLDEST_UNACKED.set_function(self._oldest_age)
        metrics.PENDING.set_function(lambda: self.buffer.size()[0])

    def _oldest_age(self) -> float:
        oldest = self.buffer.oldest()
        return time.monotonic() - oldest if oldest is not None else 0.0

    def health(self) -> tuple[bool, dict[str, Any]]:
        db_ok = self.db_failing_since is None or time.monotonic() - self.db_failing_since < DB_UNHEALTHY_AFTER_S
        mqtt_ok = self.subscriber.connected.is_set()
        return db_ok and mqtt_ok, {
            "mqtt_connected": mqtt_ok,
            "database_ok": self.db_failing_since is None,
            "pending": self.buffer.size()[0],
            "oldest_unacked_age_s": round(self._oldest_age(), 3),
            "last_commit_age_s": None if self.last_commit is None else round(time.monotonic() - self.last_commit, 3),
        }

    def run(self) -> int:
        self._with_db_retry(self.registry.load_all, self.registry.reset)
        log.info("registry: %d devices", len(self.registry))
        self.subscriber.start()
        database = threading.Thread(target=self._database_stage, name="database")
        database.start()
        settings = self.settings
        while (not self.stopping.is_set() or self.buffer.queued()) and not self.abandoned:
            items = self.buffer.take(settings.ingest_batch_size, settings.ingest_batch_bytes,
                                     settings.ingest_flush_interval_ms / 1000, self.stopping)
            if not items:
                continue
            decoded: list[Decoded] = []
            now = datetime.now(UTC)

            def decode_batch(items: list[Pending] = items, decoded: list[Decoded] = decoded,
                             now: datetime = now) -> None:
                self.registry.top_up({device_id_of(p.topic) for p in items})
                limits = settings.limits
                decoded[:] = [decode(p.topic, p.payload, self.registry, now, limits, p.retained) for p in items]

            if not self._with_db_retry(decode_batch, self.registry.reset):
                self.buffer.settle()
                break
            self._handoff.put((items, decoded, now))
        self._handoff.put(None)
        database.join()
        self.subscriber.stop()
        self.writer.close()
        self.registry.reset()
        log.info("stopped cleanly" if not self.abandoned else "stopped; unacknowledged messages will be redelivered")
        return 0

    def _database_stage(self) -> None:
        while (job := self._handoff.get()) is not None:
            items, decoded, now = job
            write = functools.partial(self._write, decoded, now)
            if not self.abandoned and self._with_db_retry(write, self.writer.reset):
                self.subscriber.ack(items)
                self.last_commit = time.monotonic()
                metrics.LAST_COMMIT.set(time.time())
                metrics.BATCH_MESSAGES.observe(len(items))
                self._count_messages(decoded)
            self.buffer.settle()

    def _write(self, decoded: list[Decoded], now: datetime) -> None:
        started = time.perf_counter()
        result = self.writer.write(decoded, now)
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        for table, n in result.rows.items():
            metrics.ROWS.labels(table).inc(n)
        for table, n in result.duplicates.items():
            if n:
                metrics.DUPLICATES.labels(table).inc(n)
        for reason, n in Counter(r.reason for r in result.rejections).items():
            metrics.REJECTS.labels(reason).inc(n)

    @staticmethod
    def _count_messages(decoded: list[Decoded]) -> None:
        results = Counter("status" if d.status else "rejected" if d.rejections and not d.rows else "stored"
                          for d in decoded)
        for result, n in results.items():
            metrics.MESSAGES.labels(result).inc(n)
        for status, n in Counter(d.status for d in decoded if d.status).items():
            metrics.STATUS_CHANGES.labels(status).inc(n)

    def _with_db_retry(self, action: Callable[[], None], reset: Callable[[], None]) -> bool:
        """Run ``action`` until it succeeds, backing off on transient database errors. False when shutting down
        with the database still unreachable after the shutdown timeout (nothing is acknowledged then)."""
        backoff = DB_BACKOFF_START_S
        give_up_at: float | None = None
        while True:
            if self.abandoned:
                return False
            try:
                action()
            except TRANSIENT as exc:
                metrics.DB_ERRORS.labels("transient").inc()
                metrics.DB_UP.set(0)
                reset()
                if self.db_failing_since is None:
                    self.db_failing_since = time.monotonic()
                if self.stopping.is_set():
                    give_up_at = give_up_at or time.monotonic() + self.settings.ingest_shutdown_timeout_s
                    if time.monotonic() >= give_up_at:
                        log.error("shutting down with the database unreachable; pending messages stay "
                                  "unacknowledged and will be redelivered")
                        self.abandoned = True
                        return False
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("database unavailable (%s); nothing acknowledged, retrying in %.1fs", first_line, backoff)
                time.sleep(backoff)
                backoff = min(DB_BACKOFF_MAX_S, backoff * 2) * random.uniform(0.8, 1.2)
                continue
            if self.db_failing_since is not None:
                log.info("database back after %.1fs", time.monotonic() - self.db_failing_since)
                self.db_failing_since = None
            metrics.DB_UP.set(1)
            return True


def tune_interpreter() -> None:
    """Three threads share the GIL: the network thread does short I/O calls, the others long CPU runs. With the
    default 5 ms switch interval every socket read waits out a CPU slice (a convoy); 0.5 ms keeps the network
    thread fed. The collector is made lazier because each message allocates a few short-lived objects, and
    full collections over the pending buffer cost more than they free."""
    sys.setswitchinterval(0.0005)
    gc.set_threshold(50_000, 20, 100)


def main() -> int:
    from ioc.settings import load

    tune_interpreter()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load(IngestSettings)
    service = IngestService(settings)

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: finishing pending work, then exiting", signum)
        service.subscriber.stop_reading()
        service.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.ingest_metrics_port:
        from services.ingest.http import serve

        serve(settings.ingest_metrics_host, settings.ingest_metrics_port, service.health)
    return service.run()
