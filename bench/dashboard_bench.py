"""Panel query timings over a full-size city: every SQL panel of the committed dashboards, for 1 h, 24 h and 30 days.

    python -m bench.dashboard_bench [--storage on|off] [--days 8] [--runs 3] [--keep]

Seeds a throw-away database with the city fleet (``build_fleet("city")``, ≈ 40 000 devices) and ``--days`` of
readings generated inside PostgreSQL (``testkit.cityseed.seed_bulk``, ~2.5 million rows a day), refreshes the
continuous aggregates and compresses chunks older than 7 days as the TimescaleDB policies would, ANALYZEs, then
runs each panel query as Grafana renders it (default variables: the city, all wards, all families): one
warm-up and ``--runs`` timed runs, median reported. Prints every query and the slowest per range against the
targets (24 h < 300 ms, 30 days < 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import psycopg

from bench.common import SERVER, status
from dashboards import OUTPUT, load
from dashboards.macros import TimeRange
from dashboards.queries import RANGES, PanelQuery, panel_queries, selection
from ioc.db.migrate import migrate
from testkit.cityseed import seed_bulk
from testkit.databases import create_database, drop_database

TARGET_MS = {"1h": 300.0, "24h": 300.0, "30d": 1000.0}


def time_queries(dsn: str, timescaledb: bool, runs: int, now: datetime) -> list[tuple[str, PanelQuery, float, int]]:
    results: list[tuple[str, PanelQuery, float, int]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        wards = [r[0] for r in conn.execute(
            "SELECT DISTINCT ward FROM ioc.devices WHERE city = 'dien-bien-phu' AND ward IS NOT NULL")]
        for path in sorted(OUTPUT.rglob("*.json")):
            dashboard = load(path)
            variables = selection(dashboard, {}, {"ward": wards})
            for query in panel_queries(dashboard):
                if query.language != "sql":
                    continue
                for name, span in RANGES.items():
                    sql = query.sql(TimeRange(now - span, now), variables, timescaledb).encode()
                    rows = len(conn.execute(sql).fetchall())  # warm-up
                    timings = []
                    for _ in range(runs):
                        started = time.perf_counter()
                        conn.execute(sql).fetchall()
                        timings.append((time.perf_counter() - started) * 1000)
                    results.append((name, query, statistics.median(timings), rows))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", choices=("on", "off"), default="on", help="TimescaleDB (on) or plain PostgreSQL")
    parser.add_argument("--days", type=int, default=8, help="days of readings (≥ 7; the 8th is compressed)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database (its DSN is printed)")
    args = parser.parse_args()

    dsn = create_database(SERVER, prefix="ioc_bench")
    try:
        report = migrate(dsn, args.storage)
        status(f"database {dsn.rsplit('/', 1)[1]}: storage path {report.storage_path}")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        summary = seed_bulk(dsn, days=args.days, end=now, progress=status)
        status(f"seeded {summary.devices} devices, {sum(summary.rows.values()):,} rows in {summary.seconds:.0f} s: "
               + ", ".join(f"{t} {n:,}" for t, n in summary.rows.items()))
        results = time_queries(dsn, report.storage_path == "timescaledb", args.runs, now)
        print(f"\n{'range':>5} {'ms':>9} {'rows':>6}  panel")
        for name, query, ms, rows in sorted(results, key=lambda r: (r[0], -r[2])):
            print(f"{name:>5} {ms:9.1f} {rows:6d}  {query.name}")
        print()
        for name in RANGES:
            worst = max((r for r in results if r[0] == name), key=lambda r: r[2])
            verdict = "ok" if worst[2] < TARGET_MS[name] else "OVER TARGET"
            print(f"slowest {name:>3}: {worst[2]:8.1f} ms  {worst[1].name}  (target < {TARGET_MS[name]:.0f} ms: "
                  f"{verdict})")
        if args.keep:
            print(f"kept {dsn}")
    finally:
        if not args.keep:
            drop_database(SERVER, dsn)


if __name__ == "__main__":
    main()
