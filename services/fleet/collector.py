"""A Prometheus collector that answers a scrape from one snapshot query, reused for ``cache_s`` seconds.

On a database error the scrape still answers: ``ioc_fleet_database_up 0`` and no data series (stale numbers
would keep alerts firing or hide new ones; Prometheus marks the vanished series stale and the
"database unreachable" alert inhibits the data alerts meanwhile).
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
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.fleet import metrics
from services.fleet.query import SnapshotSource

log = logging.getLogger("ioc.fleet")

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

    def refresh(self) -> None:
        """Run the snapshot query unless the last one is younger than cache_s."""
        with self._lock:
            now = self.clock()
            if now - self._taken_at < self.cache_s:
                return
            started = time.perf_counter()
            try:
                rows = self.source.fetch()
            except psycopg.Error as exc:
                log.warning("fleet snapshot failed: %s", exc)
                self._families, self._up = [], 0.0
            else:
                on = lamps_scheduled_on(datetime.fromtimestamp(now, UTC), self.latitude, self.longitude)
                self._families = metrics.data_families(rows, schedule_on=on)
                self._up, self._last_success = 1.0, now
            self._duration = time.perf_counter() - started
            self._taken_at = now

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
