"""Bytes per stored street-lamp reading on TimescaleDB, before and after compression (and on plain PostgreSQL):
the figure behind the disk arithmetic in deploy/SCALING.md.

    .venv/bin/python -m bench.storage_size_bench [--devices 2000] [--days 2]

Rows are generated in the database (10-minute readings, slowly varying values like the simulators'); prints
figures, asserts nothing.
"""

from __future__ import annotations

import argparse

import psycopg

from bench.common import database, status

FILL = """
INSERT INTO ioc.lighting_readings (time, device_id, power_state, illuminance_level, power_w, voltage_v, current_a,
                                   energy_kwh, lamp_status)
SELECT t, 'LAMP' || lpad(d::text, 6, '0'), 'on', 0.7, round((40 + random() * 10)::numeric, 1),
       round((229 + random())::numeric, 1), 0.2, 100 + extract(epoch FROM t - '2026-03-01') / 3600 * 0.05, 'ok'
FROM generate_series(1, %(devices)s) d,
     generate_series('2026-03-01'::timestamptz, '2026-03-01'::timestamptz + %(days)s * interval '1 day'
                     - interval '10 min', interval '10 min') t
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    for storage in ("on", "off"):
        with database(storage) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(FILL, {"devices": args.devices, "days": args.days})
            conn.execute("VACUUM ANALYZE ioc.lighting_readings")
            rows = conn.execute("SELECT count(*) FROM ioc.lighting_readings").fetchone()[0]  # type: ignore[index]
            size_sql = ("SELECT hypertable_size('ioc.lighting_readings')" if storage == "on"
                        else "SELECT pg_total_relation_size('ioc.lighting_readings')")
            size = conn.execute(size_sql).fetchone()[0]  # type: ignore[index]
            label = "TimescaleDB" if storage == "on" else "plain PostgreSQL"
            status(f"{label}: {rows} rows, {size / 2**20:.1f} MiB with indexes = {size / rows:.0f} B/reading")
            if storage == "on":
                conn.execute("SELECT compress_chunk(c) FROM show_chunks('ioc.lighting_readings') c")
                compressed = conn.execute(size_sql).fetchone()[0]  # type: ignore[index]
                status(f"TimescaleDB compressed: {compressed / 2**20:.1f} MiB = {compressed / rows:.0f} B/reading "
                       f"({size / compressed:.1f}x)")


if __name__ == "__main__":
    main()
