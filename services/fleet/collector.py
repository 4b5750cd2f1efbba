"""A Prometheus collector that answers a scrape from one snapshot query, reused for ``cache_s`` seconds.

On a database error the scrape still answers with ``ioc_fleet_database_up 0`` and, for KEEP_LAST_SNAPSHOT_S,
the last good snapshot (so a blip neither resolves nor re-fires the data alerts; "DatabaseUnreachable" inhibits
them meanwhile); after that, no data series at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
from astral import Observer
from astral.sun import elevation
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.fleet import metrics
from services.fleet.query import SnapshotSource

log = logging.getLogger("ioc.fleet")

# On a failed query the last good snapshot is served this long (with ioc_fleet_database_up 0): a database blip
# must not resolve every data alert and page them all again a minute later. Then the data series vanish.
KEEP_LAST_SNAPSHOT_S = 300.0
# Cabinets switch at civil dusk/dawn: the sun 6° below the horizon.
CIVIL_TWILIGHT_DEG = -6.0


def lamps_scheduled_on(at: datetime, latitude: float, longitude: float) -> bool:
    """True between civil dusk and civil dawn at the given place."""
    return bool(elevation(Observer(latitude, longitude), at) < CIVIL_TWILIGHT_DEG)


class FleetCollector(Collector):
    def __init__(self, source: SnapshotSource, *, cache_s: float, latitude: float, longitude: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.cache_s = cache_s
        self.latitude, self.longitude = latitude, longitude
        self.clock = clock
        self._lock = threading.Lock()  # one query at a time, however many scrapes arrive together
        self._families: list[GaugeMetricFamily] = []
        self._taken_at = float("-inf")  # clock time of the last attempt, successful or not
        self._up = 0.0
        self._duration = 0.0
        self._last_success = 0.0
        self._background = False
        self.version = 0  # bumped by every refresh: what a rendered exposition was made from

    def _fresh(self) -> bool:
        # With the background thread, a snapshot is fresh for two periods (the thread may be mid-query).
        return self.clock() - self._taken_at < self.cache_s * (2 if self._background else 1)

    def refresh(self, force: bool = False) -> None:
        """Run the snapshot query unless the last one is younger than cache_s."""
        if not force and self._fresh():
            return  # checked before the lock too: a scrape never queues behind the background query
        with self._lock:
            now = self.clock()
            if not force and self._fresh():
                return
            started = time.perf_counter()
            try:
                rows = self.source.fetch()
            except psycopg.Error as exc:
                log.warning("fleet snapshot failed: %s", exc)
                self._up = 0.0
                if now - self._last_success > KEEP_LAST_SNAPSHOT_S:
                    self._families = []
            else:
                on = lamps_scheduled_on(datetime.fromtimestamp(now, UTC), self.latitude, self.longitude)
                self._families = metrics.data_families(rows, schedule_on=on)
                self._up, self._last_success = 1.0, now
            self._duration = time.perf_counter() - started
            self._taken_at = now
            self.version += 1

    def refresh_in_background(self, stop: threading.Event) -> threading.Thread:
        """Refresh every cache_s in a thread, so a scrape only renders the snapshot and never waits for the query
        (a scrape still queries itself if the thread has fallen behind by more than cache_s)."""
        def loop() -> None:
            while not stop.is_set():
                self.refresh(force=True)
                stop.wait(self.cache_s)

        self._background = True
        thread = threading.Thread(target=loop, name="fleet-snapshot", daemon=True)
        thread.start()
        return thread

    @property
    def database_up(self) -> bool:
        return self._up == 1.0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.refresh()
        yield from self._families
        for spec, value in ((metrics.DATABASE_UP, self._up), (metrics.SNAPSHOT_SECONDS, self._duration),
                            (metrics.SNAPSHOT_TIME, self._last_success)):
            family = spec.family()
            family.add_metric([], value)
            yield family


class Exposition:
    """The text exposition of a registry holding the collector, rendered once per snapshot: between refreshes every
    scrape gets the same bytes (rendering ~2 000 series costs more than serving them). With cache_s 0 every scrape
    queries and renders."""

    def __init__(self, registry: CollectorRegistry, collector: FleetCollector) -> None:
        self.registry, self.collector = registry, collector
        self._lock = threading.Lock()
        self._version = -1
        self._body = b""

    def __call__(self) -> bytes:
        if self.collector.cache_s <= 0:
            return generate_latest(self.registry)
        self.collector.refresh()
        with self._lock:
            if self._version != self.collector.version:
                version = self.collector.version
                self._body = generate_latest(self.registry)
                self._version = version
            return self._body
