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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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


# --- full-size city generated inside PostgreSQL --------------------------------------------------------------

_LOCAL_HOUR = "extract(hour FROM t AT TIME ZONE 'Asia/Ho_Chi_Minh')"
# A device's phase within its report interval, so readings are spread, not all on the minute.
_OFFSET = "make_interval(secs => abs(hashtext(d.device_id)) % {interval})"

BULK: dict[str, str] = {
    "lighting_readings": f"""
INSERT INTO ioc.lighting_readings (time, device_id, ingest_time, power_state, illuminance_level, power_w, voltage_v,
                                   current_a, energy_kwh, lamp_status)
SELECT t, d.device_id, t + interval '3 seconds',
       CASE WHEN NOT night THEN 'off' WHEN dim THEN 'low' ELSE 'on' END,
       CASE WHEN NOT night THEN 0 WHEN dim THEN 0.5 ELSE 1 END,
       CASE WHEN faulty OR NOT night THEN 0 WHEN dim THEN 0.5 ELSE 1 END * rated * (0.97 + random() * 0.06),
       229 + random() * 4, CASE WHEN night AND NOT faulty THEN rated / 230 ELSE 0 END,
       100 + extract(epoch FROM t) / 86400 * rated * 0.011,
       CASE WHEN faulty THEN 'defectiveLamp' ELSE 'ok' END
  FROM ioc.devices d
 CROSS JOIN LATERAL generate_series(%(start)s::timestamptz + {_OFFSET.format(interval=900)}, %(end)s, '15 minutes') t
 CROSS JOIN LATERAL (SELECT {_LOCAL_HOUR} AS h) lh
 CROSS JOIN LATERAL (SELECT h >= 18 OR h < 6 AS night, coalesce((d.metadata ->> 'dimmable')::bool, false)
                            AND (h >= 23 OR h < 5) AS dim, (d.metadata ->> 'rated_w')::real AS rated,
                            abs(hashtext(d.device_id || 'fault')) % 100 = 0 AS faulty) x
 WHERE d.kind = 'streetlight' AND t < %(end)s""",
    "cabinet_readings": f"""
INSERT INTO ioc.cabinet_readings (time, device_id, ingest_time, working_mode, power_state, voltage_r_v, voltage_s_v,
                                  voltage_t_v, current_r_a, current_s_a, current_t_a, power_r_kw, power_s_kw,
                                  power_t_kw, energy_kwh)
SELECT t, d.device_id, t + interval '3 seconds', 'automatic', CASE WHEN night THEN 'on' ELSE 'off' END,
       230, 231, 229, kw * 1000 / 230 / 3, kw * 1000 / 230 / 3, kw * 1000 / 230 / 3, kw / 3, kw / 3, kw / 3,
       1000 + extract(epoch FROM t) / 86400 * kw_rated * 11
  FROM ioc.devices d
 CROSS JOIN LATERAL generate_series(%(start)s::timestamptz + {_OFFSET.format(interval=900)}, %(end)s, '15 minutes') t
 CROSS JOIN LATERAL (SELECT {_LOCAL_HOUR} AS h) lh
 CROSS JOIN LATERAL (SELECT ((d.metadata -> 'rated_w' ->> 'R')::real + (d.metadata -> 'rated_w' ->> 'S')::real
                            + (d.metadata -> 'rated_w' ->> 'T')::real) / 1000 AS kw_rated,
                            h >= 18 OR h < 6 AS night) r
 CROSS JOIN LATERAL (SELECT CASE WHEN night THEN kw_rated ELSE 0 END AS kw) x
 WHERE d.kind = 'cabinet' AND t < %(end)s""",
    "water_readings": f"""
INSERT INTO ioc.water_readings (time, device_id, ingest_time, consumption_m3, flow_lph, pressure_bar, battery_level,
                                alarms)
SELECT t, d.device_id, t + interval '20 seconds',
       CASE WHEN meter THEN (d.metadata ->> 'start_m3')::float8
                            + extract(epoch FROM t - %(start)s::timestamptz) / 86400 * daily END,
       CASE WHEN meter THEN daily * 1000 / 24 * use ELSE households * 0.5 * 1000 / 24 * use + leak END,
       CASE WHEN meter THEN NULL ELSE (d.metadata ->> 'nominal_bar')::real - 0.6 * use END,
       CASE WHEN meter THEN 0.85 END,
       CASE WHEN meter AND abs(hashtext(d.device_id || 'leak')) % 50 = 0 THEN ARRAY['leak'] END
  FROM ioc.devices d
 CROSS JOIN LATERAL (SELECT d.kind = 'meter' AS meter, coalesce((d.metadata ->> 'daily_m3')::float8, 0) AS daily,
                            coalesce((d.metadata ->> 'households')::float8, 0) AS households,
                            CASE WHEN d.kind = 'meter' THEN interval '1 hour' ELSE interval '5 minutes' END AS step) k
 CROSS JOIN LATERAL generate_series(%(start)s::timestamptz + {_OFFSET.format(interval=300)}, %(end)s, k.step) t
 CROSS JOIN LATERAL (SELECT {_LOCAL_HOUR} AS h) lh
 CROSS JOIN LATERAL (SELECT CASE WHEN h < 5 THEN 0.25 WHEN h < 7 OR h >= 22 THEN 0.7 ELSE 1.25 END AS use,
                            CASE WHEN abs(hashtext(d.site)) % 10 = 0 THEN 800 ELSE 0 END AS leak) u
 WHERE d.family = 'water' AND t < %(end)s""",
    "traffic_readings": f"""
INSERT INTO ioc.traffic_readings (time, device_id, lane_id, ingest_time, intensity, occupancy, avg_speed_kmh,
                                  congested, motorcycles, cars, buses, trucks, bicycles)
SELECT t, d.device_id, lane, t + interval '2 seconds', n, least(load * 0.7, 1), free * (1 - 0.6 * load),
       load > 0.85, round(n * 0.75), round(n * 0.18), round(n * 0.02), n - round(n * 0.75) - round(n * 0.18)
       - round(n * 0.02), 0
  FROM ioc.devices d
 CROSS JOIN LATERAL generate_series(1, (d.metadata ->> 'lanes')::int) lane
 CROSS JOIN LATERAL generate_series(%(start)s::timestamptz, %(end)s, '1 minute') t
 CROSS JOIN LATERAL (SELECT {_LOCAL_HOUR} + extract(minute FROM t) / 60 AS h,
                            (d.metadata ->> 'free_speed_kmh')::real AS free,
                            (d.metadata ->> 'lane_capacity_per_min')::real AS capacity) lh
 CROSS JOIN LATERAL (SELECT least(0.05 + 0.8 * exp(-((h - 7.5) ^ 2) / 2) + 0.9 * exp(-((h - 17.5) ^ 2) / 2)
                                  + 0.35 * exp(-((h - 12) ^ 2) / 8) + random() * 0.05, 1.0) AS load) l
 CROSS JOIN LATERAL (SELECT round(capacity * load * 0.8)::int AS n) c
 WHERE d.kind = 'counter' AND t < %(end)s""",
    "environment_readings": f"""
INSERT INTO ioc.environment_readings (time, device_id, ingest_time, pm25, pm10, temperature_c, relative_humidity,
                                      precipitation_mm, laeq_db, lamax_db, water_level_m)
SELECT t, d.device_id, t + interval '5 seconds',
       CASE WHEN d.kind = 'air_quality' THEN pm END, CASE WHEN d.kind = 'air_quality' THEN pm * 1.7 END,
       CASE WHEN d.kind = 'weather' THEN 22 + 6 * sin((h - 9) / 24 * 2 * pi()) END,
       CASE WHEN d.kind = 'weather' THEN 0.72 - 0.15 * sin((h - 9) / 24 * 2 * pi()) END,
       CASE WHEN d.kind = 'weather' THEN CASE WHEN random() < 0.03 THEN random() * 3 ELSE 0 END END,
       CASE WHEN d.kind = 'noise' THEN CASE WHEN h BETWEEN 6 AND 20 THEN 64 ELSE 52 END + random() * 6 END,
       CASE WHEN d.kind = 'noise' THEN 78 + random() * 8 END,
       CASE WHEN d.kind = 'river_gauge' THEN (d.metadata ->> 'base_level_m')::real
                                             + 0.3 * sin(extract(epoch FROM t) / 86400 / 3) END
  FROM ioc.devices d
 CROSS JOIN LATERAL generate_series(%(start)s::timestamptz + {_OFFSET.format(interval=300)}, %(end)s, '5 minutes') t
 CROSS JOIN LATERAL (SELECT {_LOCAL_HOUR} AS h) lh
 CROSS JOIN LATERAL (SELECT 28 + 18 * sin((h - 3) / 24 * 2 * pi()) + random() * 10 AS pm) p
 WHERE d.family = 'environment' AND t < %(end)s""",
}

BULK_AFTER = (
    """INSERT INTO ioc.device_events (time, device_id, event_type, severity, description)
       SELECT %(end)s::timestamptz - random() * (%(end)s::timestamptz - %(start)s::timestamptz), device_id,
              CASE family WHEN 'water' THEN 'leak' WHEN 'lighting' THEN 'lampFailure' ELSE 'sensorFault' END,
              CASE WHEN random() < 0.2 THEN 'critical' ELSE 'warning' END, 'bench'
         FROM ioc.devices TABLESAMPLE SYSTEM (2) WHERE family <> 'gateway' ON CONFLICT DO NOTHING""",
    """INSERT INTO ioc.rejected_messages (received_at, topic, device_id, reason, detail, payload, payload_size)
       SELECT %(end)s::timestamptz - random() * (%(end)s::timestamptz - %(start)s::timestamptz),
              'ioc/v1/dien-bien-phu/lighting/SL-0001-001/telemetry', 'SL-0001-001',
              (ARRAY['invalid_json', 'missing_field', 'future_timestamp', 'unknown_device'])[1 + i % 4],
              'bench', '\\x7b'::bytea, 1
         FROM generate_series(1, 5000) i""",
    """UPDATE ioc.device_state s SET last_seen = %(end)s::timestamptz - random() * interval '5 minutes',
              last_reading_time = %(end)s::timestamptz - interval '5 minutes',
              status = CASE WHEN abs(hashtext(s.device_id || 'off')) % 100 = 0 THEN 'offline' ELSE 'online' END,
              status_changed_at = %(start)s""",
)


# Not read by any panel (the lighting panels read the per-ward rollups): refreshing them costs ~5 minutes each
# at city size, and no timing depends on it.
UNREAD_ROLLUPS = frozenset({"ioc.lighting_15m", "ioc.lighting_1h"})


def _materialize(conn: psycopg.Connection[Any], end: datetime, progress: Callable[[str], None]) -> None:
    """What the TimescaleDB policies would have done by now: rollups refreshed up to an hour ago, chunks older
    than 7 days compressed."""
    views = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', view_schema, view_name) FROM timescaledb_information.continuous_aggregates")]
    for view in sorted(views, key=lambda v: v.endswith("_1h")):  # hierarchical: the 15-minute ones first
        if view in UNREAD_ROLLUPS:
            continue
        progress(f"refresh {view}")
        conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, %s)".encode(), (end - timedelta(hours=1),))
    progress("compress chunks older than 7 days")
    conn.execute("""SELECT count(compress_chunk(c, true)) FROM timescaledb_information.hypertables h,
                           show_chunks(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass,
                                       older_than => interval '7 days') c
                     WHERE h.hypertable_schema = 'ioc' AND h.compression_enabled""")


def _schedule_jobs(conn: psycopg.Connection[Any], scheduled: bool) -> None:
    """Pause (False) or resume (True) the TimescaleDB policy jobs: while rows are bulk-loaded and refreshed by
    hand, a policy refreshing the same window makes the explicit refresh fail, and one compressing a chunk being
    loaded slows the load."""
    for (job,) in conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE job_id >= 1000").fetchall():
        conn.execute("SELECT alter_job(%s, scheduled => %s)", (job, scheduled))


def _escaped(statement: str) -> bytes:
    """The statement with its SQL ``%`` operators doubled (psycopg placeholders stay)."""
    return (statement.replace("%", "%%").replace("%%(start)s", "%(start)s").replace("%%(end)s", "%(end)s")
            .encode())


def seed_bulk(dsn: str, *, size: str | int = "city", days: int = 8, end: datetime | None = None,
              progress: Callable[[str], None] = lambda _: None) -> SeedSummary:
    """``days`` of readings for the whole fleet up to ``end``, a day per statement per table; on TimescaleDB the
    rollups are refreshed and chunks older than 7 days compressed, as the policies would have done."""
    started = time.perf_counter()
    fleet = build_fleet(size)
    summary = SeedSummary(devices=len(fleet))
    end = end or datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        upsert_devices(conn, fleet)
        timescaledb = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        if timescaledb and timescaledb[0]:
            _schedule_jobs(conn, False)
        for day in range(days, 0, -1):
            params = {"start": end - timedelta(days=day), "end": end - timedelta(days=day - 1)}
            for table, statement in BULK.items():
                n = conn.execute(_escaped(statement), params).rowcount
                summary.rows[table] = summary.rows.get(table, 0) + n
            progress(f"day -{day}: {sum(summary.rows.values()):,} rows so far")
        whole = {"start": end - timedelta(days=days), "end": end}
        for statement in BULK_AFTER:
            conn.execute(_escaped(statement), whole)
        if timescaledb and timescaledb[0]:
            _materialize(conn, end, progress)
            _schedule_jobs(conn, True)
        progress("analyze")
        conn.execute("ANALYZE")
    summary.seconds = time.perf_counter() - started
    return summary
