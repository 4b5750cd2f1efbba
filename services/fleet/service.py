"""``ioc fleet-metrics``: serve the fleet collector on /metrics (and /health) until SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from prometheus_client import CollectorRegistry

from ioc.settings import load
from services.fleet.collector import Exposition, FleetCollector
from services.fleet.config import FleetSettings
from services.fleet.query import DatabaseSource
from services.ops_http import serve

log = logging.getLogger("ioc.fleet")


def build(settings: FleetSettings) -> tuple[CollectorRegistry, FleetCollector, DatabaseSource]:
    source = DatabaseSource(settings.database_url, silent_factor=settings.fleet_silent_factor,
                            reading_window_s=settings.fleet_reading_window_s,
                            timeout_s=settings.fleet_query_timeout_s)
    collector = FleetCollector(source, cache_s=settings.fleet_cache_s, latitude=settings.fleet_latitude,
                               longitude=settings.fleet_longitude)
    # Its own registry: the exporter serves fleet figures only (no process_* noise from a second job).
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry, collector, source


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load(FleetSettings)
    registry, collector, source = build(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def health() -> tuple[bool, dict[str, Any]]:
        collector.refresh()  # no-op while the background snapshot is fresh
        return collector.database_up, {"database_ok": collector.database_up}

    if settings.fleet_cache_s > 0:
        collector.refresh_in_background(stop)
    server = serve(settings.fleet_metrics_host, settings.fleet_metrics_port, health, Exposition(registry, collector))
    log.info("fleet metrics on http://%s:%d/metrics", settings.fleet_metrics_host, server.server_address[1])
    stop.wait()
    server.shutdown()
    source.close()
    return 0
