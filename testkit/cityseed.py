"""Seed a database with a simulated city, for the dashboard tests and benchmark.

``seed_through_ingest``: the simulators' back-fill messages (``simulators.generator.hourly_batches``) go through
ingest's own decoder and writer (no broker: the dashboards test what is stored, not MQTT), so rows, device
state, status changes, events and rejections look exactly as in production. Used with the smoke fleet.

``seed_bulk``: a full-size city (``build_fleet("city")``, ≈ 40 000 devices) with days of readings generated
inside PostgreSQL (``INSERT … SELECT generate_series``): shapes like the simulators' (diurnal traffic, lamps
on at night, hourly meters), tens of millions of rows in minutes, for timing panel queries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from ioc.contract.topics import topic_for
from ioc.registry import Device, upsert_devices
from services.ingest.decode import Decoded, DeviceInfo, decode
from services.ingest.writer import Writer
from simulators.fleet import build_fleet
from simulators.generator import hourly_batches

WEEK_S = 7 * 86400
# Scenarios placed near the end of the seeded window, so "last hour" panels have something to show.
DEFAULT_SCENARIOS = ("water-burst@{late}", "cabinet-trip@{late}", "malformed-burst@{late}", "festival-jam@{late}")


@dataclass
class SeedSummary:
    devices: int = 0
    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejections: int = 0
    offline: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _write(writer: Writer, decoded: Sequence[Decoded], now: datetime, summary: SeedSummary) -> None:
    result = writer.write(decoded, now)
    for table, n in result.rows.items():
        summary.rows[table] = summary.rows.get(table, 0) + n
    summary.rejections += len(result.rejections)
    summary.messages += len(decoded)


def seed_through_ingest(dsn: str, *, size: str | int = "smoke", hours: int = 26, previous_weeks: int = 1,
                        seed: int = 7, end: int | None = None, scenarios: Iterable[str] | None = None,
                        extra_devices: Iterable[Device] = ()) -> SeedSummary:
    """``hours`` of the fleet up to ``end`` (default now), plus ``previous_weeks`` same-window weeks of the
    traffic counters (for the same-weekday comparison); one gateway and one lamp end up offline."""
    started = time.perf_counter()
    fleet = build_fleet(size)
    summary = SeedSummary(devices=len(fleet))
    with psycopg.connect(dsn) as conn:
        upsert_devices(conn, [*fleet, *extra_devices])
    infos = {d.device_id: DeviceInfo(d.kind, d.family, d.city, d.gateway_id) for d in fleet}
    end = int(time.time()) // 60 * 60 if end is None else end
    start = end - hours * 3600
    now = datetime.fromtimestamp(end, UTC)
    late = f"{hours - 2}h"
    refs = [s.format(late=late) for s in (DEFAULT_SCENARIOS if scenarios is None else scenarios)]
    writer = Writer(dsn)
    try:
        statuses = [decode(topic_for(d.city, d.family, d.device_id, "status"), b"online", infos, now) for d in fleet]
        _write(writer, statuses, now, summary)
        counters = [d for d in fleet if d.kind == "counter"]
        for week in range(previous_weeks, 0, -1):
            for batch in hourly_batches(counters, seed, start - week * WEEK_S, end - week * WEEK_S):
                _write(writer, [decode(m.topic, m.payload, infos, now) for m in batch], now, summary)
        for batch in hourly_batches(fleet, seed, start, end, refs):
            _write(writer, [decode(m.topic, m.payload, infos, now) for m in batch], now, summary)
        gateway = next(d for d in fleet if d.family == "gateway")
        lamp = next(d for d in fleet if d.kind == "streetlight" and d.gateway_id != gateway.device_id)
        summary.offline = [gateway.device_id, lamp.device_id]
        offline = [decode(topic_for(d.city, d.family, d.device_id, "status"), b"offline", infos, now)
                   for d in (gateway, lamp)]
        _write(writer, offline, now, summary)
    finally:
        writer.close()
    analyze(dsn)
    summary.seconds = time.perf_counter() - started
    return summary


def analyze(dsn: str) -> None:
    """Fresh planner statistics, as autovacuum would have after a day of ingest (a freshly loaded table has
    none, and the planner then picks nested loops over thousands of rows)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


def city_devices(size: str | int = "city") -> list[Device]:
    return build_fleet(size)
