"""One ingest worker: wires the subscriber, decoder and writer together and runs until SIGTERM.

Three threads, each a stage, handing batches on in order:
  network (subscriber.py): socket → pending buffer; sends PUBACKs.
  decode (main thread):    pending buffer → registry check → decoded rows.
  database:                decoded rows → COPY → COMMIT → PUBACKs queued.
The decode of batch N+1 overlaps the COPY and commit of batch N (psycopg waits on the server without the
GIL). A one-slot handoff keeps at most one decoded batch waiting, so memory stays bounded.

Every stage is supervised (stages.py): a message that makes the decoder fail becomes an ``internal_error``
rejection; any other unexpected exception ends the process (exit 70). A database that cannot take writes
(dberrors.py) is retried with backoff, acknowledging nothing, while ``/health`` says why.
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

import psycopg

from ioc.contract.topics import device_id_of
from services.ingest import faults, metrics
from services.ingest.config import IngestSettings
from services.ingest.dberrors import DatabaseUnavailable, classify
from services.ingest.decode import Decoded, Limits, decode
from services.ingest.pending import Pending, PendingBuffer
from services.ingest.registry_cache import RegistryCache
from services.ingest.retention import Retention
from services.ingest.stages import die, install_excepthook, run_stage, supervised_thread
from services.ingest.subscriber import Subscriber
from services.ingest.writer import Writer

log = logging.getLogger("ioc.ingest")

# Database retry backoff: first retry quickly (a failover takes seconds), then cap so an outage costs little.
DB_BACKOFF_START_S, DB_BACKOFF_MAX_S = 0.5, 10.0

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
        self.db_error: str | None = None  # why the database is failing: a dberrors class name and its message
        self.decoding = False  # the decode stage (main thread) is in its loop
        self.last_commit: float | None = None
        self.abandoned = False  # shutdown gave up on an unreachable database
        self._handoff: queue.Queue[Job | None] = queue.Queue(maxsize=1)
        self._database = supervised_thread("database", self._database_stage)
        self.retention = Retention(settings.database_url, settings.retention, settings.ingest_retention_interval_s)
        metrics.OLDEST_UNACKED.set_function(self._oldest_age)
        metrics.PENDING.set_function(lambda: self.buffer.size()[0])

    def _oldest_age(self) -> float:
        oldest = self.buffer.oldest()
        return time.monotonic() - oldest if oldest is not None else 0.0

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when every stage runs, the broker and the database take our traffic, and nothing waits for its
        acknowledgement longer than IOC_INGEST_STALL_AFTER_S. ``reasons`` says what is wrong."""
        stages = {"network": self.subscriber.running(), "decode": self.decoding,
                  "database": self._database.is_alive()}
        reasons = [f"stage {name} is not running" for name, up in stages.items() if not up]
        mqtt_ok = self.subscriber.connected.is_set()
        if not mqtt_ok:
            reasons.append("not connected to the MQTT broker")
        failing_since, db_error = self.db_failing_since, self.db_error
        if failing_since is not None:
            reasons.append(f"database refuses writes for {time.monotonic() - failing_since:.0f}s ({db_error}); "
                           "nothing is acknowledged meanwhile")
        oldest = self._oldest_age()
        if oldest > self.settings.ingest_stall_after_s:
            reasons.append(f"stalled: the oldest unacknowledged message is {oldest:.0f}s old "
                           f"(IOC_INGEST_STALL_AFTER_S={self.settings.ingest_stall_after_s:g})")
        return not reasons, {
            "reasons": reasons,
            "stages": stages,
            "mqtt_connected": mqtt_ok,
            "database_ok": failing_since is None,
            "database_error": db_error,
            "pending": self.buffer.size()[0],
            "oldest_unacked_age_s": round(oldest, 3),
            "last_commit_age_s": None if self.last_commit is None else round(time.monotonic() - self.last_commit, 3),
        }

    def run(self) -> int:
        run_stage("decode", self._run)
        return 0

    def _run(self) -> None:
        self.decoding = True
        self._with_db_retry(self.registry.load_all, self.registry.reset)
        log.info("registry: %d devices", len(self.registry))
        self.subscriber.start()
        self._database.start()
        if self.retention.keep and self.settings.ingest_retention_interval_s:
            supervised_thread("retention", functools.partial(self.retention.run, self.stopping), daemon=True).start()
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
                if faults.ACTIVE:
                    for p in items:
                        faults.check("decode_batch", p.topic)
                self.registry.top_up({device_id_of(p.topic) for p in items})
                limits, registry = settings.limits, self.registry
                try:  # the fast path: no per-message wrapper
                    if faults.ACTIVE:
                        raise faults.InjectedFault("take the per-message path, where faults are injected")
                    decoded[:] = [decode(p.topic, p.payload, registry, now, limits, p.retained) for p in items]
                except Exception:  # find the message(s) the decoder fails on, and decode the others
                    decoded[:] = [self._decode_one(p, now, limits) for p in items]

            if not self._with_db_retry(decode_batch, self.registry.reset):
                self.buffer.settle()
                break
            self._handoff.put((items, decoded, now))
        self.decoding = False
        self._handoff.put(None)
        self._database.join()
        self.subscriber.stop()
        self.writer.close()
        self.registry.reset()
        log.info("stopped cleanly" if not self.abandoned else "stopped; unacknowledged messages will be redelivered")

    def _decode_one(self, p: Pending, now: datetime, limits: Limits) -> Decoded:
        """Decode one message; a decoder failure (a bug, or a payload it did not foresee) rejects this message
        only, as ``internal_error`` with the exception's type, and the stream goes on."""
        try:
            if faults.ACTIVE:
                faults.check("decode", p.topic)
            return decode(p.topic, p.payload, self.registry, now, limits, p.retained)
        except Exception as exc:
            log.error("decoding a message on %s failed; stored as an internal_error rejection", p.topic, exc_info=exc)
            out = Decoded(p.topic, p.payload, device_id_of(p.topic) or None)
            return out.reject("internal_error", f"the decoder failed on this message: {type(exc).__name__}: "
                                                f"{exc}"[:1000])

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
        if faults.ACTIVE:
            for d in decoded:
                faults.check("database", d.topic)
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
        for d in decoded:
            for reason, n in (d.more or {}).items():  # readings summarised in one row, counted one by one here
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
        """Run ``action`` until it succeeds, backing off while the database cannot take it (any error of
        ``DatabaseUnavailable``, or a psycopg error of a registry lookup). False when shutting down with the database
        still unavailable after the shutdown timeout (nothing is acknowledged then). Anything else propagates."""
        backoff = DB_BACKOFF_START_S
        give_up_at: float | None = None
        while True:
            if self.abandoned:
                return False
            try:
                action()
            except (DatabaseUnavailable, psycopg.Error) as exc:
                if isinstance(exc, DatabaseUnavailable):
                    error = exc.error
                else:
                    kind = classify(exc)
                    if kind is None:  # client-side misuse: a bug, which retrying cannot fix
                        raise
                    error = kind.error  # a registry lookup: whatever the class, retried (it reads no message data)
                    metrics.DB_ERRORS.labels("transient", error).inc()
                metrics.DB_UP.set(0)
                reset()
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.db_error = first_line if first_line.startswith(error) else f"{error}: {first_line}"
                if self.db_failing_since is None:
                    self.db_failing_since = time.monotonic()
                if self.stopping.is_set():
                    give_up_at = give_up_at or time.monotonic() + self.settings.ingest_shutdown_timeout_s
                    if time.monotonic() >= give_up_at:
                        log.error("shutting down with the database unreachable; pending messages stay "
                                  "unacknowledged and will be redelivered")
                        self.abandoned = True
                        return False
                log.warning("database unavailable (%s); nothing acknowledged, retrying in %.1fs", self.db_error,
                            backoff)
                time.sleep(backoff)
                backoff = min(DB_BACKOFF_MAX_S, backoff * 2) * random.uniform(0.8, 1.2)
                continue
            if self.db_failing_since is not None:
                log.info("database back after %.1fs", time.monotonic() - self.db_failing_since)
                self.db_failing_since = self.db_error = None
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
    install_excepthook()
    settings = load(IngestSettings)
    try:
        service = IngestService(settings)
    except Exception as exc:
        die("start", exc)

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: finishing pending work, then exiting", signum)
        service.subscriber.stop_reading()
        service.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.ingest_metrics_port:
        from services.ops_http import serve

        serve(settings.ingest_metrics_host, settings.ingest_metrics_port, service.health)
    return service.run()
