"""The one snapshot query: every fleet figure in a single round trip, aggregated in the database.

Each result row is ``(section, labels, v1, v2)``; ``metrics.py`` says what each section's labels and values
mean. Cost at city size (≈40 000 devices) is dominated by one pass over ``devices ⋈ device_state``; the latest
readings come from a bounded window (lamps) or one index probe per critical device (cabinets, gauges, network
points, counters: a few hundred probes). Measured by ``bench/fleet_metrics_bench.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import psycopg

# Silent: an offline status not followed by any message, or nothing heard for factor × report interval. A device
# never heard from is not silent but not yet commissioned (status unknown): importing a city's registry before
# the hardware is installed must not page every area.
_SILENT = """(CASE WHEN s.status = 'offline' AND (s.last_seen IS NULL OR s.last_seen <= s.status_changed_at) THEN true
          WHEN s.last_seen IS NULL THEN false
          ELSE s.last_seen < now() - d.report_interval_s * %(factor)s * interval '1 second'
     END)::int"""

# One pass over devices ⋈ device_state ⋈ (newest lamp reading) aggregates two grouping sets at once: by status
# (by city too, summed in Python) and by area (cabinet / DMA). Lamps' newest state comes from a hash aggregate
# over the reading window (max(time) vs max(time) of an on/dimmed reading) rather than a sort. The few hundred
# devices with series of their own (cabinets, network points, counters, gauges, stations) are picked once into
# `small` (index on kind, migration 0008) and their newest readings probed by primary key.
SNAPSHOT_SQL = """
WITH lamp_latest AS (
    SELECT r.device_id, max(r.time) AS newest, max(r.time) FILTER (WHERE r.power_state IN ('on', 'low')) AS newest_on
    FROM ioc.lighting_readings r
    WHERE r.time > now() - %(window)s * interval '1 second'
    GROUP BY r.device_id
),
base AS (
    SELECT d.city, coalesce(d.ward, '') AS ward, d.family, d.kind, coalesce(s.status, 'unknown') AS status,
           CASE WHEN d.family = 'lighting' THEN 'cabinet' WHEN d.family = 'water' THEN 'dma' END AS area_type,
           CASE WHEN d.family = 'lighting' THEN coalesce(d.parent_id, d.device_id)
                WHEN d.family = 'water' THEN coalesce(d.parent_id, d.metadata->>'dma') END AS area,
           SILENT AS silent, s.last_seen, l.newest IS NOT NULL AS lamp_reporting, l.newest_on = l.newest AS lamp_on
    FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id) LEFT JOIN lamp_latest l USING (device_id)
),
agg AS (
    SELECT city, ward, family, kind, status, area_type, area, GROUPING(status) AS g_status, GROUPING(area) AS g_area,
           min(ward) AS some_ward, count(*)::float8 AS n, sum(silent)::float8 AS silent, max(last_seen) AS last_seen,
           count(*) FILTER (WHERE kind = 'streetlight' AND silent = 0 AND lamp_reporting)::float8 AS lamps,
           count(*) FILTER (WHERE kind = 'streetlight' AND silent = 0 AND lamp_on)::float8 AS lamps_on
    FROM base
    GROUP BY GROUPING SETS ((city, ward, family, kind, status), (city, area_type, area))
),
small AS MATERIALIZED (
    SELECT d.device_id, d.kind, d.city, coalesce(d.ward, '') AS ward, coalesce(d.site, '') AS site,
           d.report_interval_s, d.metadata, coalesce(d.parent_id, d.metadata->>'dma') AS dma, s.last_reading_time,
           SILENT AS silent,
           coalesce(d.parent_id, d.metadata->>'dma', nullif(d.ward, ''), d.city) AS crit_area,
           d.kind IN ('river_gauge', 'air_quality') OR (d.kind = 'network_point' AND d.metadata->>'role' = 'inlet')
               AS critical
    FROM ioc.devices d LEFT JOIN ioc.device_state s USING (device_id)
    WHERE d.kind IN ('cabinet', 'network_point', 'counter', 'river_gauge', 'air_quality')
)
SELECT 'status', ARRAY[city, ward, family, kind, status], n, silent FROM agg WHERE g_status = 0
UNION ALL
SELECT 'last_seen', ARRAY[city], extract(epoch FROM now() - last_seen), NULL
FROM agg WHERE g_status = 0 AND last_seen IS NOT NULL
UNION ALL
SELECT 'lamps', ARRAY[city, ward], lamps_on, lamps
FROM agg WHERE g_status = 0 AND kind = 'streetlight'
UNION ALL
SELECT 'area', ARRAY[city, some_ward, area_type, area], n, silent
FROM agg WHERE g_area = 0 AND area IS NOT NULL
UNION ALL
SELECT 'cabinet', ARRAY[c.city, c.ward, c.device_id, c.site],
       (CASE WHEN r.time IS NOT NULL AND (ev.time IS NULL OR r.time > ev.time)
             THEN coalesce(greatest(r.voltage_r_v, r.voltage_s_v, r.voltage_t_v) < %(supply_lost_v)s, false)
             ELSE coalesce(ev.event_type = 'cabinetTrip', false) END)::int::float8, NULL
FROM small c
LEFT JOIN LATERAL (
    SELECT e.time, e.event_type FROM ioc.device_events e
    WHERE e.device_id = c.device_id AND e.event_type IN ('cabinetTrip', 'powerRestored')
      AND e.time > now() - interval '2 days'
    ORDER BY e.time DESC LIMIT 1) ev ON true
LEFT JOIN LATERAL (
    SELECT r.time, r.voltage_r_v, r.voltage_s_v, r.voltage_t_v FROM ioc.cabinet_readings r
    WHERE r.device_id = c.device_id AND r.time > now() - c.report_interval_s * %(factor)s * interval '1 second'
    ORDER BY r.time DESC LIMIT 1) r ON true
WHERE c.kind = 'cabinet'
UNION ALL
SELECT 'critical', ARRAY[city, ward, crit_area, kind, device_id, site],
       extract(epoch FROM now() - last_reading_time), silent::float8
FROM small WHERE critical
UNION ALL
SELECT 'river', ARRAY[c.city, c.ward, c.crit_area, c.device_id, c.site], lvl.water_level_m, NULL
FROM small c JOIN LATERAL (
    SELECT r.water_level_m FROM ioc.environment_readings r
    WHERE r.device_id = c.device_id AND r.water_level_m IS NOT NULL
      AND r.time > now() - c.report_interval_s * %(factor)s * interval '1 second'
    ORDER BY r.time DESC LIMIT 1) lvl ON true
WHERE c.kind = 'river_gauge'
UNION ALL
SELECT 'river_alarm', ARRAY[c.city, c.ward, c.crit_area, c.device_id, c.site, a.level::text], a.value::float8, NULL
FROM small c CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(c.metadata->'alarm_levels_m') = 'array' THEN c.metadata->'alarm_levels_m'
         WHEN jsonb_typeof(c.metadata->'warning_level_m') = 'number'
              THEN jsonb_build_array(c.metadata->'warning_level_m')
         ELSE '[]'::jsonb END) WITH ORDINALITY AS a(value, level)
WHERE c.kind = 'river_gauge'
UNION ALL
SELECT 'pm25', ARRAY[c.city, c.ward, c.crit_area, c.device_id, c.site], avg(r.pm25), count(r.pm25)::float8
FROM small c JOIN ioc.environment_readings r ON r.device_id = c.device_id AND r.time > now() - interval '24 hours'
WHERE c.kind = 'air_quality'
GROUP BY c.city, c.ward, c.crit_area, c.device_id, c.site HAVING count(r.pm25) > 0
UNION ALL
SELECT 'dma', ARRAY[p.city, min(p.ward), p.dma],
       min(w.pressure_bar / nullif((p.metadata->>'nominal_bar')::float8, 0)),
       max(w.flow_lph) FILTER (WHERE p.metadata->>'role' = 'inlet')
FROM small p JOIN LATERAL (
    SELECT r.pressure_bar, r.flow_lph FROM ioc.water_readings r
    WHERE r.device_id = p.device_id AND r.time > now() - p.report_interval_s * %(factor)s * interval '1 second'
    ORDER BY r.time DESC LIMIT 1) w ON true
WHERE p.kind = 'network_point' AND p.silent = 0 AND p.dma IS NOT NULL
GROUP BY p.city, p.dma
UNION ALL
SELECT 'intersection', ARRAY[t.city, min(t.ward), coalesce(t.metadata->>'intersection', t.site)],
       avg(lane.congested::int), avg(lane.avg_speed_kmh)
FROM small t JOIN LATERAL (
    SELECT DISTINCT ON (r.lane_id) r.congested, r.avg_speed_kmh FROM ioc.traffic_readings r
    WHERE r.device_id = t.device_id AND r.time > now() - t.report_interval_s * %(factor)s * interval '1 second'
    ORDER BY r.lane_id, r.time DESC) lane ON true
WHERE t.kind = 'counter' AND t.silent = 0
GROUP BY t.city, coalesce(t.metadata->>'intersection', t.site)
""".replace("SILENT", _SILENT)

# A cabinet whose newest reading shows every phase below this has lost its supply (tripped breaker, cut feeder).
SUPPLY_LOST_V = 50.0


# The three grouping sets are hashed in one pass when their tables fit in work_mem (~10 MB at city size); with
# the server default (4 MB) PostgreSQL sorts 40 000 rows by five text columns instead, which triples the cost.
WORK_MEM = "32MB"


class Row(NamedTuple):
    section: str
    labels: Sequence[str]
    v1: float | None
    v2: float | None


class SnapshotSource(Protocol):
    """Where snapshots come from: the database in production, a fixed list in unit tests."""

    def fetch(self) -> list[Row]: ...


class DatabaseSource:
    """Runs SNAPSHOT_SQL on one lazily (re)opened connection; a failed query drops it so the next one reconnects."""

    def __init__(self, dsn: str, *, silent_factor: float, reading_window_s: int, timeout_s: float) -> None:
        self.dsn = dsn
        self.params: dict[str, Any] = {"factor": silent_factor, "window": reading_window_s,
                                       "supply_lost_v": SUPPLY_LOST_V}
        self.timeout_ms = int(timeout_s * 1000)
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=max(1, self.timeout_ms // 1000),
                                         application_name="ioc-fleet-metrics",
                                         options=f"-c statement_timeout={self.timeout_ms} -c work_mem={WORK_MEM}")
        return self._conn

    def fetch(self) -> list[Row]:
        try:
            rows = self._connection().execute(SNAPSHOT_SQL, self.params).fetchall()
        except psycopg.Error:
            self.close()
            raise
        return [Row(str(r[0]), list(r[1]), _num(r[2]), _num(r[3])) for r in rows]

    def explain(self) -> str:
        """The plan with actual timings (EXPLAIN ANALYZE), for the benchmark and for tuning."""
        rows = self._connection().execute("EXPLAIN (ANALYZE, BUFFERS) " + SNAPSHOT_SQL, self.params).fetchall()
        return "\n".join(str(r[0]) for r in rows)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _num(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]  # numeric/float8 from the server
