"""Query API benchmark: the full simulated city in the database, then p50/p95 of the API next to the same SQL
run directly with psycopg, in the same run.

Seeding (bulk binary COPY of generated rows; no broker, no ingest): ``simulators.fleet.build_fleet("city")``
(≈40 800 devices) with ``--days`` (default 1) of readings at each kind's report interval, plus 30 days for the
lamps of one cabinet (the 30-day series), the latest-value rows ingest would keep, and on TimescaleDB the
continuous aggregates refreshed. Then, for each case, ``--requests`` (default 200) timed requests after a
warm-up, through a separate API process (``ioc api``, uvicorn) over keep-alive HTTP:

- whole-city latest status (one streamed response of every device's state and newest reading)
- a ward KPI summary (status per family + lighting now)
- a 30-day hourly series of one lamp
- a 24-hour 15-minute aggregate over a ward: pressure of its water network points, and (heavy) power of its lamps

    python -m bench.api_bench [--storage plain|timescaledb|both] [--days 1] [--requests 200]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg

from bench.common import ROOT, database, status
from ioc.db.connect import timescaledb_offered
from ioc.registry import Device, upsert_devices
from services.api.keys import create_key
from services.api.queries import kpis as kq
from services.api.queries import readings as rq
from services.api.queries import series as sq
from services.api.queries.filters import DeviceFilter
from simulators.fleet import build_fleet
from testkit.ports import free_port

CITY = "dien-bien-phu"
WARD = "Mường Thanh"
TZ_OFFSET = timedelta(hours=7)
ROLLUPS = [f"ioc.{f}_{w}" for f in ("lighting", "cabinet", "water", "traffic", "environment") for w in ("15m", "1h")]

# --- seeding ---------------------------------------------------------------------------------------------------

Row = tuple[Any, ...]


def _lamp(t: datetime, i: int, k: int, night: bool) -> Row:
    on = night and (i + k) % 97 != 0
    return (t, None, "on" if on else "off", 1.0 if on else 0.0, (40.0 + i % 60) if on else 0.4, 229.0 + i % 5,
            0.2 if on else 0.0, 1000.0 + k * 0.012, "ok" if i % 211 else "defectiveLamp")


def _generate(fleet: list[Device], start: datetime, end: datetime, long_ids: set[str], long_start: datetime,
              ) -> Iterator[tuple[str, Row]]:
    """(table, row) for every reading; rows carry device_id at index 1."""
    for i, d in enumerate(fleet):
        if d.kind == "gateway":
            continue
        step = timedelta(seconds=d.report_interval_s)
        t = (long_start if d.device_id in long_ids else start) + timedelta(seconds=(i * 37) % d.report_interval_s)
        k = 0
        while t < end:
            hour = (t + TZ_OFFSET).hour
            night = hour >= 18 or hour < 6
            if d.kind == "streetlight":
                row = _lamp(t, i, k, night)
                yield "lighting_readings", (row[0], d.device_id, *row[2:])
            elif d.kind == "cabinet":
                p = 0.8 if night else 0.01
                yield "cabinet_readings", (t, d.device_id, "automatic", "on" if night else "off", 229.0, 230.0,
                                           228.0, 3.0, 3.1, 2.9, p, p, p, 20_000.0 + k * 0.6)
            elif d.kind in ("meter", "network_point"):
                flow = 20.0 + 200.0 * (0.2 if hour < 5 else 1.0) + i % 13
                yield "water_readings", (t, d.device_id, 100.0 + k * 0.03, flow, 3.0 + (i % 10) / 10, 0.9, [])
            elif d.kind == "counter":
                for lane in range(1, int(d.metadata.get("lanes", 2)) + 1):
                    n = (i + k + lane) % 25
                    yield "traffic_readings", (t, d.device_id, lane, n, n / 40, 35.0 + lane, n > 20, n, 0, 0, 0, 0)
            else:
                yield "environment_readings", (t, d.device_id, 30.0 + i % 20, 50.0 + i % 30, 20.0, 40.0, 500.0, 5.0,
                                               25.0, 0.7, 0.0, 55.0 + i % 15, 70.0, 1.6 + (i % 5) / 10)
            t += step
            k += 1


COLUMNS = {
    "lighting_readings": (["time", "device_id", "power_state", "illuminance_level", "power_w", "voltage_v",
                           "current_a", "energy_kwh", "lamp_status"],
                          ["timestamptz", "text", "text", "float4", "float4", "float4", "float4", "float8", "text"]),
    "cabinet_readings": (["time", "device_id", "working_mode", "power_state", "voltage_r_v", "voltage_s_v",
                          "voltage_t_v", "current_r_a", "current_s_a", "current_t_a", "power_r_kw", "power_s_kw",
                          "power_t_kw", "energy_kwh"],
                         ["timestamptz", "text", "text", "text"] + ["float4"] * 9 + ["float8"]),
    "water_readings": (["time", "device_id", "consumption_m3", "flow_lph", "pressure_bar", "battery_level", "alarms"],
                       ["timestamptz", "text", "float8", "float4", "float4", "float4", "text[]"]),
    "traffic_readings": (["time", "device_id", "lane_id", "intensity", "occupancy", "avg_speed_kmh", "congested",
                          "motorcycles", "cars", "buses", "trucks", "bicycles"],
                         ["timestamptz", "text", "int2", "int4", "float4", "float4", "bool"] + ["int4"] * 5),
    "environment_readings": (["time", "device_id", "pm25", "pm10", "no2", "o3", "co", "so2", "temperature_c",
                              "relative_humidity", "precipitation_mm", "laeq_db", "lamax_db", "water_level_m"],
                             ["timestamptz", "text"] + ["float4"] * 12),
}


def seed(dsn: str, days: float, timescaledb: bool) -> tuple[list[Device], datetime, str]:
    fleet = build_fleet("city")
    end = datetime.fromtimestamp(int(time.time()) // 3600 * 3600, UTC)
    start = end - timedelta(days=days)
    long_cabinet = "CAB-0001"
    long_ids = {d.device_id for d in fleet if d.parent_id == long_cabinet}
    lamp = sorted(long_ids)[0]
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        upsert_devices(conn, fleet)
    status(f"registered {len(fleet)} devices in {time.perf_counter() - t0:.1f} s")
    newest: dict[str, tuple[str, list[Row]]] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        # One COPY per table, rows written as generated: ~2.5 M rows without holding them in memory.
        for table, (cols, types) in COLUMNS.items():
            with cur.copy(f"COPY ioc.{table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                n = 0
                for t, row in _generate([d for d in fleet if _table_of(d) == table], start, end, long_ids,
                                        end - timedelta(days=30)):
                    copy.write_row(row)
                    n += 1
                    held = newest.get(row[1])
                    if held is None or held[1][0][0] < row[0]:
                        newest[row[1]] = (t, [row])
                    elif held[1][0][0] == row[0]:
                        held[1].append(row)
                counts[table] = n
        status(f"copied {sum(counts.values()):,} readings in {time.perf_counter() - t0:.1f} s: " +
               ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        rnd = random.Random(7)
        cur.execute("DELETE FROM ioc.device_state")  # rewritten whole below, as ingest would have left it
        with cur.copy("COPY ioc.device_state (device_id, last_seen, last_reading_time, last_reading_at, last_reading,"
                      " status, status_changed_at) FROM STDIN") as copy:
            for d in fleet:
                held = newest.get(d.device_id)
                offline = rnd.random() < 0.02  # some colour: 2 % offline
                status_ = "offline" if offline else "online"
                if held is None:
                    copy.write_row((d.device_id, now, None, None, None, status_, now))
                    continue
                table, rows = held
                cols = COLUMNS[table][0]
                objs = [{c: v for c, v in zip(cols, r, strict=True) if c not in ("time", "device_id")} for r in rows]
                value = {"lanes": objs} if table == "traffic_readings" else objs[0]
                copy.write_row((d.device_id, now, rows[0][0], rows[0][0], orjson.dumps(value).decode(), status_, now))
        conn.commit()
        status(f"latest-value rows in {time.perf_counter() - t0:.1f} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        if timescaledb:
            for view in ROLLUPS:
                conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
            status(f"continuous aggregates refreshed in {time.perf_counter() - t0:.1f} s")
        conn.execute("VACUUM ANALYZE")
    return fleet, end, lamp


def _table_of(d: Device) -> str | None:
    from ioc.contract.kinds import KINDS

    return KINDS[d.kind].table


# --- timing ----------------------------------------------------------------------------------------------------

def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2], s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)]


def timed(fn: Callable[[], object], n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


class ApiProcess:
    """``ioc api`` in its own process, so the client does not share a GIL with the server."""

    def __init__(self, dsn: str) -> None:
        self.port = free_port()
        env = {**os.environ, "IOC_DATABASE_URL": dsn, "IOC_API_PORT": str(self.port)}
        self.proc = subprocess.Popen([sys.executable, "-m", "ioc_cli", "api"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the API did not start: " + (self.proc.stderr.read().decode()[-2000:]
                                                                 if self.proc.stderr else ""))
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _seeded(storage: str, days: float, reuse: str | None) -> Iterator[tuple[str, list[Device], datetime, str]]:
    if reuse:  # a database an earlier run seeded (with --keep): same fleet, same end
        with psycopg.connect(reuse) as conn:
            row = conn.execute("SELECT max(time) FROM ioc.lighting_readings").fetchone()
        assert row is not None and row[0] is not None, "that database holds no readings"
        end = datetime.fromtimestamp((int(row[0].timestamp()) // 3600 + 1) * 3600, UTC)
        fleet = build_fleet("city")
        yield reuse, fleet, end, sorted(d.device_id for d in fleet if d.parent_id == "CAB-0001")[0]
        return
    with database("off" if storage == "plain" else "on") as dsn:
        fleet, end, lamp = seed(dsn, days, storage == "timescaledb")
        yield dsn, fleet, end, lamp


def run(storage: str, days: float, requests: int, reuse: str | None = None,
        ) -> list[tuple[str, str, list[float], list[float], int]]:
    results = []
    for dsn, fleet, end, lamp in _seeded(storage, days, reuse):
        results += _measure(storage, requests, dsn, fleet, end, lamp)
    return results


def _measure(storage: str, requests: int, dsn: str, fleet: list[Device], end: datetime, lamp: str,
             ) -> list[tuple[str, str, list[float], list[float], int]]:
    results = []
    with psycopg.connect(dsn) as conn:
        key = create_key(conn, "bench", "viewer")[1]
    api = ApiProcess(dsn)
    client = httpx.Client(base_url=api.url, headers={"X-API-Key": key}, timeout=60)
    raw = psycopg.connect(dsn, autocommit=True, options="-c TimeZone=UTC")
    try:
        city = DeviceFilter(city=CITY)
        ward = DeviceFilter(city=CITY, ward=WARD)

        def latest_sql(reading: bool) -> object:
            params: dict[str, Any] = {}
            return raw.execute(rq.latest_query(city, params, reading), params).fetchall()

        def summary_sql() -> object:
            return kq.status_counts(raw, ward, "family"), kq.lighting_now(raw, ward, True)

        def series_request(flt: DeviceFilter, device: str | None, metric: str, interval: timedelta,
                           span: timedelta, table: str) -> tuple[sq.SeriesRequest, str | None]:
            start = end - span
            origin = (start + TZ_OFFSET).replace(hour=0, minute=0, second=0) - TZ_OFFSET
            req = sq.SeriesRequest(table, metric, "avg", interval, origin, start, end, device, flt, "none")
            rollup = sq.rollup_for(req) if storage == "timescaledb" and span >= timedelta(days=2) else None
            return req, rollup

        def series_sql(req: sq.SeriesRequest, rollup: str | None) -> Callable[[], object]:
            return lambda: sq.run(raw, req, rollup)

        cases: list[tuple[str, Callable[[], object], Callable[[], object], str]] = []
        n_city = sum(d.city == CITY for d in fleet)

        def get(path: str, **params: Any) -> Callable[[], object]:
            def call() -> object:
                r = client.get(path, params=params)
                r.raise_for_status()
                return r.content
            return call

        cases.append((f"latest status, whole city ({n_city} devices, streamed)",
                      get("/v1/latest", city=CITY, reading="false"), lambda: latest_sql(False), ""))
        cases.append((f"latest readings, whole city ({n_city} devices, streamed)",
                      get("/v1/latest", city=CITY), lambda: latest_sql(True), ""))
        cases.append((f"KPI summary, ward {WARD}", get("/v1/kpis/summary", city=CITY, ward=WARD), summary_sql, ""))
        req, rollup = series_request(DeviceFilter(), lamp, "power_w", timedelta(hours=1), timedelta(days=30),
                                     "lighting_readings")
        cases.append((f"30-day hourly series of {lamp}",
                      get("/v1/series", device=lamp, metric="power_w", interval="1h",
                          start=(end - timedelta(days=30)).isoformat(), end=end.isoformat()),
                      series_sql(req, rollup), rollup or "raw"))
        flt = DeviceFilter(city=CITY, ward=WARD, kind="network_point")
        req, rollup = series_request(flt, None, "pressure_bar", timedelta(minutes=15), timedelta(days=1),
                                     "water_readings")
        points = sum(d.ward == WARD and d.kind == "network_point" for d in fleet)
        cases.append((f"24-h 15-min avg pressure over the ward's {points} network points",
                      get("/v1/series", city=CITY, ward=WARD, kind="network_point", metric="pressure_bar",
                          interval="15m", start=(end - timedelta(days=1)).isoformat(), end=end.isoformat()),
                      series_sql(req, rollup), rollup or "raw"))
        flt = DeviceFilter(city=CITY, ward=WARD, kind="streetlight")
        req, rollup = series_request(flt, None, "power_w", timedelta(minutes=15), timedelta(days=1),
                                     "lighting_readings")
        lamps = sum(d.ward == WARD and d.kind == "streetlight" for d in fleet)
        cases.append((f"24-h 15-min avg power over the ward's {lamps} lamps (heavy)",
                      get("/v1/series", city=CITY, ward=WARD, kind="streetlight", metric="power_w",
                          interval="15m", start=(end - timedelta(days=1)).isoformat(), end=end.isoformat()),
                      series_sql(req, rollup), rollup or "raw"))
        for name, api_call, sql_call, source in cases:
            size = len(api_call())  # type: ignore[arg-type]
            a = timed(api_call, requests)
            s = timed(sql_call, requests)
            results.append((name, source, a, s, size))
            ap50, ap95 = percentiles(a)
            sp50, sp95 = percentiles(s)
            status(f"{storage}: {name}: API p50 {ap50:.1f} ms p95 {ap95:.1f} ms | SQL p50 {sp50:.1f} ms "
                   f"p95 {sp95:.1f} ms | ×{ap95 / sp95:.2f} (p95) | {size:,} bytes")
    finally:
        client.close()
        raw.close()
        api.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=("plain", "timescaledb", "both"), default="both")
    parser.add_argument("--days", type=float, default=1.0, help="days of readings for every device (≥ 1)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case (≥ 200 for the figures)")
    parser.add_argument("--reuse", metavar="DSN", help="time against an already seeded database (one storage path)")
    args = parser.parse_args()
    from bench.common import SERVER

    with psycopg.connect(SERVER, autocommit=True) as conn:
        offered = timescaledb_offered(conn) is not None
    paths = ["plain", "timescaledb"] if args.storage == "both" else [args.storage]
    if "timescaledb" in paths and not offered:
        status("TimescaleDB is not offered by the server: plain PostgreSQL only")
        paths = ["plain"]
    table: list[str] = []
    for storage in paths:
        for name, source, a, s, _ in run(storage, args.days, args.requests, args.reuse):
            ap50, ap95 = percentiles(a)
            sp50, sp95 = percentiles(s)
            table.append(f"| {storage} | {name} | {source or '-'} | {ap50:.1f} / {ap95:.1f} | {sp50:.1f} / {sp95:.1f} "
                         f"| {ap95 / sp95:.2f} | {statistics.fmean(a):.1f} |")
    print(f"\n{args.requests} requests per case, after 5 warm-up requests; milliseconds")
    print("| storage | case | source | API p50 / p95 | SQL p50 / p95 | API/SQL p95 | API mean |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
