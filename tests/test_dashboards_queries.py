"""Every SQL panel query of the committed dashboards, run on a seeded city on both storage paths.

The queries are read from the committed JSON (what Grafana loads), rendered as Grafana renders them
(``dashboards.macros``: variables, ``$__interval``, macros, the TimescaleDB toggle as the path suggests) for
1 h, 24 h and 30 days and several variable values, executed, and their result checked for what the panel
type needs. The data: the smoke fleet's last 26 hours (plus a week-earlier day of traffic counters) through
ingest's decoder and writer.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import dashboards
from dashboards.macros import TimeRange
from dashboards.queries import RANGES, PanelQuery, panel_queries, selection, variables_of
from ioc.registry import Device
from testkit.cityseed import seed_through_ingest
from tests.conftest import STORAGE_PATHS, migrated_database, require_storage

pytestmark = pytest.mark.integration

COMMITTED = {p: dashboards.load(p) for p in sorted(dashboards.OUTPUT.rglob("*.json"))}
SQL_QUERIES = [q for d in COMMITTED.values() for q in panel_queries(d) if q.language == "sql"]
# Relations created by other parts of the system; a panel reading one is skipped (not failed) until it exists.
PROVIDED_ELSEWHERE = {"ioc.alerts": "the alert history (issue 8)", "ioc.alert_acks": "the alert history (issue 8)"}

NUMERIC = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
TIMES = {1082, 1114, 1184}  # date, timestamp, timestamptz
TEXT = {25, 1043, 19, 18}  # text, varchar, name, char

SANDBOX = Device(device_id="SIM-AQ-1", family="environment", kind="air_quality", city="sim-test", ward="Sandbox",
                 site="Sandbox", lat=21.39, lon=103.01, report_interval_s=300)


class Seeded:
    conn: psycopg.Connection[Any]  # autocommit, shared by the module's queries

    def __init__(self, dsn: str, storage: str) -> None:
        self.dsn = dsn
        self.storage = storage
        self.now = datetime.now(UTC).replace(second=0, microsecond=0)
        self.summary = seed_through_ingest(dsn, end=int(self.now.timestamp()), extra_devices=[SANDBOX])
        with psycopg.connect(dsn) as conn:
            # the alert history as Alertmanager's webhook leaves it (issue 8): one firing, one resolved
            conn.execute("""INSERT INTO ioc.alerts (fingerprint, starts_at, alertname, status, severity, area, city,
                                                    ward, labels, annotations, ends_at)
                            VALUES ('f1', now() - interval '20 minutes', 'AreaOutage', 'firing', 'critical',
                                    'CAB-0001', 'dien-bien-phu', 'Mường Thanh', '{}', '{"summary": "CAB-0001 dark"}',
                                    NULL),
                                   ('f2', now() - interval '3 hours', 'RiverLevelI', 'resolved', 'warning',
                                    'RG-01', 'dien-bien-phu', NULL, '{}', '{}', now() - interval '1 hour')""")
            # Simulated meters raise alarms only while a leak or a flat battery lasts, which a 26-hour window ending
            # now may not catch: one meter reports a leak ten minutes ago, so the alarm panels always have a row.
            conn.execute("""INSERT INTO ioc.water_readings (time, device_id, flow_lph, alarms)
                            SELECT %s, device_id, 42.0, ARRAY['leak', 'lowBattery'] FROM ioc.devices
                             WHERE city = 'dien-bien-phu' AND kind = 'meter' ORDER BY device_id LIMIT 1
                            ON CONFLICT DO NOTHING""", (self.now - timedelta(minutes=10),))
            self.wards = [r[0] for r in conn.execute(
                "SELECT DISTINCT ward FROM ioc.devices WHERE city = 'dien-bien-phu' AND ward IS NOT NULL ORDER BY 1")]
            self.relations = {r[0] for r in conn.execute(
                "SELECT schemaname || '.' || relname FROM pg_stat_user_tables WHERE schemaname = 'ioc' UNION "
                "SELECT schemaname || '.' || viewname FROM pg_views WHERE schemaname = 'ioc' UNION "
                "SELECT schemaname || '.' || matviewname FROM pg_matviews WHERE schemaname = 'ioc'")}
            if self.storage == "timescaledb":
                self.relations |= {f"ioc.{r[0]}" for r in conn.execute(
                    "SELECT view_name FROM timescaledb_information.continuous_aggregates")}
                self.relations |= {f"ioc.{r[0]}" for r in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables")}

    def options(self) -> dict[str, list[str]]:
        return {"city": ["dien-bien-phu", "sim-test"], "ward": self.wards,
                "family": ["lighting", "water", "traffic", "environment"]}


@pytest.fixture(scope="module", params=STORAGE_PATHS)
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    require_storage(request.param)
    for dsn in migrated_database(request.param):
        seeded = Seeded(dsn, request.param)
        with psycopg.connect(dsn, autocommit=True) as seeded.conn:
            seeded.conn.execute("SET statement_timeout = '20s'")
            yield seeded


def _selections(seeded: Seeded) -> list[dict[str, list[str] | None]]:
    """Default (All wards, all families), one ward and two families, two wards and one family."""
    wards = seeded.wards
    return [{}, {"ward": [wards[0]], "family": ["lighting", "traffic"]}, {"ward": wards[1:3], "family": ["water"]}]


def _run(seeded: Seeded, query: PanelQuery, dashboard: dict[str, Any], span: timedelta,
         chosen: dict[str, list[str] | None]) -> tuple[list[tuple[str, int]], list[tuple[Any, ...]]]:
    variables = selection(dashboard, chosen, seeded.options())
    sql = query.sql(TimeRange(seeded.now - span, seeded.now), variables, seeded.storage == "timescaledb")
    try:
        cur = seeded.conn.execute(sql.encode())
    except psycopg.Error as exc:
        pytest.fail(f"{query.name} failed on {seeded.storage} for {span}, {chosen}: {exc}\n{sql}")
    assert cur.description is not None
    columns = [(c.name, c.type_code) for c in cur.description]
    return columns, cur.fetchall()


def _check_shape(query: PanelQuery, columns: list[tuple[str, int]]) -> list[int]:
    """Assert the columns the panel type needs; return the positions of the numeric value columns."""
    names = [n for n, _ in columns]
    numeric = [i for i, (_, t) in enumerate(columns) if t in NUMERIC]
    kind = query.panel_type
    if query.format == "time_series":
        assert "time" in names, f"{query.name}: a time series needs a 'time' column, got {names}"
        t = columns[names.index("time")][1]
        assert t in TIMES | NUMERIC, f"{query.name}: 'time' must be a timestamp or epoch, type oid {t}"
        values = [i for i in numeric if names[i] != "time"]
        assert values, f"{query.name}: no numeric value column in {names}"
        others = [i for i, (n, ty) in enumerate(columns) if n != "time" and i not in values]
        assert all(columns[i][1] in TEXT and names[i] == "metric" for i in others), \
            f"{query.name}: a time series has time, an optional text 'metric' and numeric values: {columns}"
        return values
    if kind == "geomap":
        for axis in ("latitude", "longitude"):
            assert axis in names and columns[names.index(axis)][1] in NUMERIC, f"{query.name}: needs numeric {axis}"
        assert len(names) > 2, f"{query.name}: a marker needs a value besides its position"
        return numeric
    if kind in ("stat", "gauge", "bargauge", "piechart", "barchart"):
        assert numeric, f"{query.name}: {kind} needs a numeric column, got {columns}"
        if kind == "barchart":
            assert any(t in TEXT | TIMES for _, t in columns), f"{query.name}: a bar chart needs a category column"
        return numeric
    assert kind == "table" and columns, f"{query.name}: unexpected panel type {kind}"
    return numeric or list(range(len(columns)))  # a table of text: every column counts as a value


@pytest.mark.parametrize("query", SQL_QUERIES, ids=[q.name for q in SQL_QUERIES])
def test_sql_panel_query_runs_and_returns_what_the_panel_needs(seeded: Seeded, query: PanelQuery) -> None:
    missing = {r for r in query.relations() if r not in seeded.relations}
    if missing:
        elsewhere = missing & PROVIDED_ELSEWHERE.keys()
        assert missing == elsewhere, f"{query.name} reads relations that do not exist: {sorted(missing - elsewhere)}"
        pytest.skip(f"needs {', '.join(sorted(missing))}: {PROVIDED_ELSEWHERE[min(missing)]}, not on this branch")
    dashboard = next(d for d in COMMITTED.values() if d["uid"] == query.dashboard)
    non_null: dict[str, int] = defaultdict(int)
    for range_name, span in RANGES.items():
        for chosen in _selections(seeded):
            columns, rows = _run(seeded, query, dashboard, span, chosen)
            values = _check_shape(query, columns)
            if chosen:
                continue  # a narrower selection may legitimately be empty; the default one may not
            assert rows, f"{query.name}: no rows for the last {range_name} on {seeded.storage}"
            non_null[range_name] += sum(1 for row in rows for i in values if row[i] is not None)
            for row in rows:
                for i in values:
                    v = row[i]
                    assert v is None or not isinstance(v, float | decimal.Decimal) or v == v, \
                        f"{query.name}: NaN in {columns[i][0]}"
    assert any(non_null.values()), f"{query.name}: only NULL values over all ranges on {seeded.storage}"


def test_variable_queries_run_and_keep_sandbox_cities_out_by_default(seeded: Seeded) -> None:
    for dashboard in COMMITTED.values():
        for var in variables_of(dashboard):
            variables = selection(dashboard, {}, seeded.options())
            sql = PanelQuery(dashboard["uid"], 0, var["name"], "variable", "", "sql", var["query"], "table",
                             None, 500).sql(TimeRange.last(timedelta(hours=1)), variables, False)
            with psycopg.connect(seeded.dsn) as conn:
                values = [r[0] for r in conn.execute(sql.encode())]
            assert values, f"{dashboard['uid']}: variable {var['name']} has no options"
            if var["name"] == "city":
                assert values[0] == var["current"]["value"] == "dien-bien-phu"
                assert values[-1].startswith("sim-"), "sandbox cities are listed after the real ones"
                assert not var["multi"] and not var["includeAll"], "a sandbox city is never mixed in by 'All'"
            if var["name"] == "ward":
                assert set(values) == set(seeded.wards) and "Sandbox" not in values


def test_sandbox_city_is_not_counted_in_the_default_city(seeded: Seeded) -> None:
    overview = next(d for d in COMMITTED.values() if d["uid"] == "ioc-overview")
    query = next(q for q in panel_queries(overview) if q.title == "Thiết bị theo lĩnh vực và phường")
    _, rows = _run(seeded, query, overview, timedelta(hours=1), {})
    assert all(row[1] != "Sandbox" for row in rows)
    _, rows = _run(seeded, query, overview, timedelta(hours=1), {"city": ["sim-test"]})
    assert {row[1] for row in rows} == {"Sandbox"}


def test_rollup_branch_follows_the_interval(seeded: Seeded) -> None:
    """The traffic panels (100 points) read raw rows for 1 h, the 15-minute rollup for 24 h and the hourly one
    for 30 days; PostgreSQL drops the other branches at plan time."""
    traffic = next(d for d in COMMITTED.values() if d["uid"] == "ioc-traffic")
    volume = next(q for q in panel_queries(traffic) if q.title == "Lưu lượng theo nút giao")
    variables = selection(traffic, {}, seeded.options())
    rendered = {name: volume.sql(TimeRange(seeded.now - span, seeded.now), variables, False)
                for name, span in RANGES.items()}
    assert "WHERE 60000 < 900000" in rendered["1h"]
    assert "WHERE 900000 >= 900000 AND 900000 < 3600000" in rendered["24h"]
    assert "WHERE 21600000 >= 3600000" in rendered["30d"]
    for sql in rendered.values():
        plan = [r[0] for r in seeded.conn.execute(("EXPLAIN (ANALYZE, COSTS OFF) " + sql).encode())]
        assert sum("One-Time Filter: false" in line for line in plan) == 2, "\n".join(plan)


def test_seed_wrote_every_kind_of_row(seeded: Seeded) -> None:
    s = seeded.summary
    assert {"lighting_readings", "cabinet_readings", "water_readings", "traffic_readings", "environment_readings",
            "device_events"} <= set(s.rows)
    assert s.rejections > 0 and len(s.offline) == 2



def test_storage_stats_see_compression(database: str, storage: str) -> None:
    """The platform dashboard's compression ratio: 1 on plain PostgreSQL, > 1 once TimescaleDB compressed a chunk."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("""INSERT INTO ioc.lighting_readings (time, device_id, power_state, power_w, lamp_status)
                        SELECT now() - interval '20 days' + i * interval '1 minute', 'SL-' || (i % 50), 'on',
                               50 + i % 7, 'ok' FROM generate_series(1, 20000) i""")
        if storage == "timescaledb":
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('ioc.lighting_readings') c")
        rows = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT * FROM ioc.storage_stats()")}
    uncompressed, stored = rows["lighting_readings"]
    assert stored > 0
    if storage == "timescaledb":
        assert uncompressed > 2 * stored
    else:
        assert uncompressed == stored
