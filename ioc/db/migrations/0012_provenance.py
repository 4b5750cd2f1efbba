"""Provenance of every stored reading and event: live, backfill, simulated or replayed (see ``ioc.provenance``).

Existing rows were all ingested as live data, hence the default. A constant default keeps the column cheap on
TimescaleDB hypertables with compression enabled (no rewrite; a non-constant default is refused there).
"""

from __future__ import annotations

from ioc.provenance import PROVENANCES

TABLES = ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings", "environment_readings",
          "device_events")


def statements(timescaledb: bool) -> list[str]:
    allowed = ", ".join(f"'{p}'" for p in PROVENANCES)
    return [
        f"""ALTER TABLE ioc.{table} ADD COLUMN provenance text NOT NULL DEFAULT 'live'
            CONSTRAINT {table}_provenance_check CHECK (provenance IN ({allowed}))"""
        for table in TABLES
    ]
