"""Ingest drain rate, measured the way a peer was: pre-load the broker with QoS 1 messages for the ingest's
persistent session while it is stopped, start it, and time from the first committed row to the last.

Prints end-to-end readings/s for single-reading and batched messages, and the raw binary-COPY rate of the
same rows into the same table in the same run, as a ratio.

    .venv/bin/python bench/ingest_bench.py [--messages 100000] [--batch 100] [--workers 1] [--storage auto]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import psycopg

from bench.common import (
    CITY,
    IngestProcess,
    MosquittoBroker,
    Publisher,
    database,
    encode,
    lamp_payload,
    status,
)
from services.ingest.tables import TABLES
from testkit.feeds import lamps, register

BASE_MS = int(datetime(2026, 3, 14, tzinfo=UTC).timestamp() * 1000)


def register_lamps(dsn: str, count: int) -> list[str]:
    fleet = lamps(count, prefix="BL")
    register(dsn, fleet)
    return [d.device_id for d in fleet]


def messages(devices: list[str], count: int, per_message: int) -> list[tuple[str, bytes]]:
    out = []
    for m in range(count):
        device = devices[m % len(devices)]
        round_ = m // len(devices)
        readings = [lamp_payload(BASE_MS + (round_ * per_message + k) * 60_000, m + k) for k in range(per_message)]
        payload = encode(readings[0] if per_message == 1 else readings)
        out.append((f"ioc/v1/{CITY}/lighting/{device}/telemetry", payload))
    return out


def drain(dsn: str, broker: MosquittoBroker, msgs: list[tuple[str, bytes]], rows_expected: int, workers: int) -> float:
    # 1. create the persistent sessions, then stop the workers
    procs = [IngestProcess(dsn, broker.url, w) for w in range(workers)]
    for p in procs:
        p.wait_connected()
    for p in procs:
        p.stop()
    # 2. pre-load the broker
    started = time.monotonic()
    pub = Publisher(broker.host, broker.port)
    pub.publish_all(msgs)
    pub.close()
    status(f"pre-loaded {len(msgs)} messages ({rows_expected} readings) in {time.monotonic() - started:.1f}s")
    # 3. start ingest; time from the first committed batch to the last, read from the workers' own metrics
    procs = [IngestProcess(dsn, broker.url, w) for w in range(workers)]
    rows_key = 'ioc_ingest_rows_written_total{table="lighting_readings"}'
    commit_key = "ioc_ingest_last_commit_timestamp_seconds"
    first_commit = last_commit = 0.0
    rows_at_first = total = 0.0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        samples = [p.metrics() for p in procs]
        total = sum(m.get(rows_key, 0.0) for m in samples)
        commits = [m[commit_key] for m in samples if m.get(rows_key)]
        if total and not first_commit:
            first_commit, rows_at_first = min(commits), total
        if total >= rows_expected:
            last_commit = max(commits)
            break
        time.sleep(0.02)
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = conn.execute("SELECT count(*) FROM ioc.lighting_readings").fetchone()[0]  # type: ignore[index]
    for p in procs:
        p.stop()
    if stored != rows_expected:
        raise SystemExit(f"expected {rows_expected} rows, found {stored}")
    if last_commit <= first_commit:
        raise SystemExit("everything landed in one batch: publish more messages to measure a rate")
    status(f"first batch {rows_at_first:.0f} rows; then {total - rows_at_first:.0f} rows in "
           f"{last_commit - first_commit:.2f}s")
    return (rows_expected - rows_at_first) / (last_commit - first_commit)


def raw_copy_rate(dsn: str, batch_rows: int) -> float:
    """COPY the rows already stored back into the (emptied) table in batches of the ingest's size."""
    spec = TABLES["lighting_readings"]
    cols = ", ".join(spec.columns)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT {cols} FROM ioc.lighting_readings ORDER BY ingest_time").fetchall()
        conn.execute("TRUNCATE ioc.lighting_readings")
        conn.commit()
        started = time.perf_counter()
        for i in range(0, len(rows), batch_rows):
            statement = f"COPY ioc.lighting_readings ({cols}) FROM STDIN (FORMAT BINARY)"
            with conn.cursor() as cur, cur.copy(statement) as cp:
                cp.set_types(list(spec.types))
                for row in rows[i: i + batch_rows]:
                    cp.write_row(row)
            conn.commit()
        return len(rows) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="single-reading messages")
    parser.add_argument("--batch", type=int, default=100, help="readings per batched message")
    parser.add_argument("--batched-messages", type=int, default=3_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--storage", choices=["auto", "on", "off"], default="auto", help="IOC_TIMESCALEDB")
    parser.add_argument("--broker-inflight", type=int, default=None,
                        help="override the broker's max_inflight_messages (the project config leaves it at 0, "
                             "uncapped; try 20000 to see mosquitto's slow refill of a capped window)")
    args = parser.parse_args()
    results = {}
    extra = f"max_inflight_messages {args.broker_inflight}\n" if args.broker_inflight is not None else ""
    with MosquittoBroker(extra_config=extra) as broker:
        with database(args.storage) as dsn:
            devices = register_lamps(dsn, args.devices)
            single = drain(dsn, broker, messages(devices, args.messages, 1), args.messages, args.workers)
            status(f"single-reading messages: {single:,.0f} msg/s end-to-end (ack after commit)")
            results["single"] = single
        with database(args.storage) as dsn:
            devices = register_lamps(dsn, args.devices)
            rows = args.batched_messages * args.batch
            batched = drain(dsn, broker, messages(devices, args.batched_messages, args.batch), rows, args.workers)
            status(f"batched messages ({args.batch}/msg): {batched:,.0f} readings/s end-to-end")
            raw = raw_copy_rate(dsn, 5_000 * 1)
            status(f"raw binary COPY of the same rows: {raw:,.0f} rows/s")
            results["batched"], results["raw"] = batched, raw
    print()
    print(f"workers={args.workers} storage={args.storage}")
    print(f"  single-reading messages : {results['single']:>10,.0f} msg/s      (target >= 30,000)")
    print(f"  batched messages        : {results['batched']:>10,.0f} readings/s")
    print(f"  raw binary COPY         : {results['raw']:>10,.0f} rows/s")
    print(f"  batched / raw COPY      : {results['batched'] / results['raw']:>10.0%}          (target >= 60%)")


if __name__ == "__main__":
    main()
