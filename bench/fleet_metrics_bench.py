"""Scrape cost of the fleet exporter at full city size (≈40 800 devices) with a realistic recent history.

Registers the simulated city, fills device_state and the recent readings the snapshot looks at (the last hour
of lamps, cabinets, meters, network points and counters, a day of air quality and river levels: ≈200 000 rows,
written with SQL, since this measures the query, not ingest), then times scrapes of ``ioc fleet-metrics``' collector
(the code path Prometheus hits): with the snapshot query on every scrape (IOC_FLEET_CACHE_S=0), and as served by
default (a background thread refreshes the snapshot every 10 s; a scrape renders it).

    .venv/bin/python -m bench.fleet_metrics_bench [--size city] [--scrapes 30] [--storage auto|on|off]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg
from prometheus_client import CollectorRegistry, generate_latest

from bench.common import database, status
from services.fleet.collector import Exposition, FleetCollector
from services.fleet.query import DatabaseSource
from simulators.fleet import build_fleet
from testkit.feeds import register

# Recent history, relative to now(); device times spread over each device's report interval.
FILL_SQL = [
    """INSERT INTO ioc.device_state (device_id, last_seen, last_reading_time, status, status_changed_at)
       SELECT device_id, now() - (hashtext(device_id) & 1023) / 1024.0 * report_interval_s * interval '1 second',
              now() - (hashtext(device_id) & 1023) / 1024.0 * report_interval_s * interval '1 second',
              CASE WHEN hashtext(device_id) % 50 = 0 THEN 'offline' ELSE 'online' END, now() - interval '1 day'
       FROM ioc.devices
       ON CONFLICT (device_id) DO UPDATE SET last_seen = EXCLUDED.last_seen, status = EXCLUDED.status,
           last_reading_time = EXCLUDED.last_reading_time, status_changed_at = EXCLUDED.status_changed_at""",
    """INSERT INTO ioc.lighting_readings (time, device_id, power_state, power_w, voltage_v)
       SELECT now() - k * interval '15 min' - (hashtext(device_id) & 1023) * interval '800 ms', device_id,
              'on', 80, 229 FROM ioc.devices, generate_series(0, 3) k WHERE kind = 'streetlight'""",
    """INSERT INTO ioc.cabinet_readings (time, device_id, power_state, voltage_r_v, voltage_s_v, voltage_t_v)
       SELECT now() - k * interval '15 min' - (hashtext(device_id) & 1023) * interval '800 ms', device_id,
              'on', 229, 230, 228 FROM ioc.devices, generate_series(0, 3) k WHERE kind = 'cabinet'""",
    """INSERT INTO ioc.water_readings (time, device_id, consumption_m3, flow_lph, pressure_bar)
       SELECT now() - k * interval '5 min' - (hashtext(device_id) & 255) * interval '1 s', device_id, NULL,
              CASE WHEN metadata->>'role' = 'inlet' THEN 9000 END, 3.1
       FROM ioc.devices, generate_series(0, 11) k WHERE kind = 'network_point'""",
    """INSERT INTO ioc.water_readings (time, device_id, consumption_m3, flow_lph)
       SELECT now() - k * interval '1 hour' - (hashtext(device_id) & 1023) * interval '3 s', device_id, 100, 20
       FROM ioc.devices, generate_series(0, 1) k WHERE kind = 'meter'""",
    """INSERT INTO ioc.traffic_readings (time, device_id, lane_id, intensity, occupancy, avg_speed_kmh, congested)
       SELECT now() - k * interval '1 min', device_id, lane, 20, 0.3, 35, lane = 1
       FROM ioc.devices, generate_series(0, 59) k, generate_series(1, 4) lane WHERE kind = 'counter'""",
    """INSERT INTO ioc.environment_readings (time, device_id, pm25, pm10)
       SELECT now() - k * interval '5 min', device_id, 30 + k % 20, 60
       FROM ioc.devices, generate_series(0, 287) k WHERE kind = 'air_quality'""",
    """INSERT INTO ioc.environment_readings (time, device_id, water_level_m)
       SELECT now() - k * interval '5 min', device_id, 1.6 FROM ioc.devices, generate_series(0, 287) k
       WHERE kind = 'river_gauge'""",
    """INSERT INTO ioc.device_events (time, device_id, event_type, severity)
       SELECT now() - interval '20 min', device_id, 'cabinetTrip', 'critical' FROM ioc.devices
       WHERE kind = 'cabinet' AND hashtext(device_id) % 60 = 0""",
    "ANALYZE",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="city")
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--storage", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--explain", action="store_true", help="print the query plan with timings first")
    args = parser.parse_args()
    with database(args.storage) as dsn:
        fleet = build_fleet(args.size, seed=1)
        register(dsn, fleet)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in FILL_SQL:
                conn.execute(statement)
            rows = sum(conn.execute(f"SELECT count(*) FROM ioc.{t}").fetchone()[0]  # type: ignore[index]
                       for t in ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings",
                                 "environment_readings"))
        status(f"registered {len(fleet)} devices, {rows:,} recent readings")
        source = DatabaseSource(dsn, silent_factor=3.0, reading_window_s=1200, timeout_s=10)
        if args.explain:
            print(source.explain())
        collector = FleetCollector(source, cache_s=0, latitude=21.386, longitude=103.017)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        generate_latest(registry)  # warm-up: connection, plan, caches
        query_ms, scrape_ms = [], []
        for _ in range(args.scrapes):
            started = time.perf_counter()
            body = generate_latest(registry)
            scrape_ms.append((time.perf_counter() - started) * 1000)
            query_ms.append(collector._duration * 1000)
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        # what a scrape costs as served (background refresh every cache_s): the snapshot's exposition, rendered
        # once per refresh; each refresh here, so every scrape renders (the worst case)
        collector.cache_s = 3600
        exposition = Exposition(registry, collector)
        render_ms = []
        for _ in range(args.scrapes):
            collector.version += 1  # as if the background thread had just refreshed
            started = time.perf_counter()
            exposition()
            render_ms.append((time.perf_counter() - started) * 1000)
        source.close()

    def figures(values: list[float]) -> str:
        ordered = sorted(values)
        return (f"median {statistics.median(ordered):6.1f} ms   p90 {ordered[int(len(ordered) * 0.9) - 1]:6.1f} ms"
                f"   max {ordered[-1]:6.1f} ms")

    print()
    print(f"{args.size} fleet: {len(fleet)} devices, {rows:,} recent readings, storage {args.storage}, "
          f"{args.scrapes} scrapes, {series} series per scrape ({len(body):,} bytes)")
    print(f"  snapshot query                  : {figures(query_ms)}")
    print(f"  scrape, query on every scrape   : {figures(scrape_ms)}")
    print(f"  scrape, background snapshot     : {figures(render_ms)}  (render; a repeat scrape of the same "
          "snapshot only copies bytes)")


if __name__ == "__main__":
    main()
