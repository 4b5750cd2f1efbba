"""One simulated day for the full-size city (~40 000 devices), through the real broker, ingest and database.

Publishes with `ioc sim backfill` (progress bar), waits until ingest has committed every reading, and prints
the duration and readings/s of each side.

    .venv/bin/python -m bench.backfill_bench [--size city] [--days 1] [--batch 1h] [--workers 1] [--storage auto]
                                             [--processes 2] [--publish-only]

``--publish-only`` runs the publisher against the broker alone (no subscriber): publish → every PUBACK back,
which is the publisher's own ceiling; ``--processes`` is passed to `ioc sim backfill`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import psycopg

from bench.common import ROOT, IngestProcess, MosquittoBroker, database, status
from simulators.fleet import build_fleet
from testkit.feeds import register

TABLES = ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings", "environment_readings")


def stored(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM ioc.{t}").fetchone()[0] for t in TABLES)  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="city")
    parser.add_argument("--days", default="1")
    parser.add_argument("--start", default="2026-03-14")
    parser.add_argument("--batch", default="1h")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--storage", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--processes", default="2", help="publisher processes (ioc sim backfill --processes)")
    parser.add_argument("--publish-only", action="store_true", help="no ingest: publish → all PUBACKs only")
    args = parser.parse_args()
    command = [sys.executable, "-m", "ioc_cli", "sim", "backfill", "--fleet", args.size, "--seed", "1",
               "--start", args.start, "--days", args.days, "--batch", args.batch, "--processes", args.processes]
    if args.publish_only:
        with MosquittoBroker() as broker:
            started = time.monotonic()
            subprocess.run(command, cwd=ROOT, env=dict(os.environ, IOC_MQTT_URL=broker.url), check=True)
            took = time.monotonic() - started
        print(f"\n{args.size} fleet, {args.days} day(s), batches of {args.batch}, {args.processes} publisher "
              f"process(es), no subscriber: publish → all acknowledged {took:.1f} s (incl. start-up)")
        return
    with MosquittoBroker() as broker, database(args.storage) as dsn:
        fleet = build_fleet(args.size, seed=1)
        register(dsn, fleet)
        status(f"registered {len(fleet)} devices")
        workers = ("--workers", str(args.workers)) if args.workers > 1 else ()
        with IngestProcess(dsn, broker.url, 0, *workers) as ingest:
            ingest.wait_connected(count=args.workers)
            started = time.monotonic()
            env = dict(os.environ, IOC_MQTT_URL=broker.url)
            subprocess.run(command, cwd=ROOT, env=env, check=True)
            published = time.monotonic() - started
            status(f"publisher done after {published:.1f}s; waiting for ingest to commit the rest")
            previous, rows = -1, stored(dsn)
            while rows != previous:  # settled: two reads 2 s apart agree
                time.sleep(2)
                previous, rows = rows, stored(dsn)
            total = time.monotonic() - started - 2
            rejects = sum(v for k, v in ingest.metrics().items() if k.startswith("ioc_ingest_rejected_total"))
            ingest.stop()
    print()
    print(f"{args.size} fleet, {len(fleet)} devices, {args.days} day(s) from {args.start}, batches of {args.batch}, "
          f"{args.processes} publisher process(es), {args.workers} ingest worker(s), storage {args.storage}")
    print(f"  readings stored         : {rows:,} (rejected: {rejects:.0f})")
    print(f"  publish → all committed : {total:.1f} s  = {rows / total:,.0f} readings/s")


if __name__ == "__main__":
    main()
