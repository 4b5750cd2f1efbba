"""Migrations, `ioc db info`, and the queries dashboards run, on both storage paths."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from ioc.db.migrate import discover, info, migrate
from testkit.feeds import lamps, register

pytestmark = pytest.mark.integration

ROLLUPS = [f"{family}_{width}" for family in ("lighting", "cabinet", "water", "traffic", "environment")
           for width in ("15m", "1h")]


def test_migrate_is_idempotent_and_recorded(database: str, storage: str) -> None:
    again = migrate(database, "on" if storage == "timescaledb" else "off")
    assert again.applied == [] and again.already == len(discover())
    details = info(database)
    assert details.storage_path == storage
    assert details.pending == []
    assert [m[0] for m in details.migrations] == sorted(discover())
    with psycopg.connect(database) as conn:
        variants = dict(conn.execute("SELECT version, variant FROM ioc.schema_migrations").fetchall())
    assert variants[4] == ("timescaledb" if storage == "timescaledb" else "skipped")


def test_timescaledb_features_are_switched_on(database: str, storage: str) -> None:
    with psycopg.connect(database) as conn:
        if storage == "plain":
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname='timescaledb'").fetchone() == (0,)
            kinds = dict(conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'ioc' AND c.relname = ANY(%s)", (ROLLUPS,)).fetchall())
            assert kinds == {name: "v" for name in ROLLUPS}
            return
        hypertables = {r[0] for r in conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'ioc'")}
        assert {"lighting_readings", "cabinet_readings", "water_readings", "traffic_readings",
                "environment_readings", "device_events"} <= hypertables
        compressed = {r[0] for r in conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables "
            "WHERE hypertable_schema = 'ioc' AND compression_enabled")}
        assert "traffic_readings" in compressed and "lighting_readings" in compressed
        jobs = {(r[0], r[1]) for r in conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs WHERE hypertable_schema = 'ioc'")}
        assert ("policy_compression", "lighting_readings") in jobs
        assert ("policy_retention", "lighting_readings") in jobs
        caggs = {r[0] for r in conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'ioc'")}
        assert caggs == set(ROLLUPS) | {"lighting_ward_15m", "lighting_ward_1h"}  # + per-ward lamps (0009)


def test_rollups_answer_the_same_on_both_paths(database: str) -> None:
    """Real-time rollups: fresh rows show up without waiting for a refresh job."""
    register(database, lamps(2))
    with psycopg.connect(database) as conn:
        for minute, power in [(0, 40.0), (5, 50.0), (20, 60.0)]:
            conn.execute(
                "INSERT INTO ioc.lighting_readings (time, device_id, power_state, power_w, energy_kwh, lamp_status)"
                " VALUES (%s, 'LAMP0000', 'on', %s, %s, 'ok')",
                (datetime(2026, 3, 14, 12, minute, tzinfo=UTC), power, 100 + minute / 60))
        conn.execute("INSERT INTO ioc.traffic_readings (time, device_id, lane_id, intensity, congested) VALUES "
                     "('2026-03-14 12:01Z', 'TC', 1, 10, true), ('2026-03-14 12:02Z', 'TC', 2, 15, false)")
        conn.execute("INSERT INTO ioc.environment_readings (time, device_id, laeq_db) VALUES "
                     "('2026-03-14 12:01Z', 'N1', 60), ('2026-03-14 12:02Z', 'N1', 70)")
        conn.commit()
        rows = conn.execute("SELECT bucket, readings, avg_power_w, lit_readings FROM ioc.lighting_15m "
                            "WHERE device_id = 'LAMP0000' ORDER BY bucket").fetchall()
        assert rows == [(datetime(2026, 3, 14, 12, 0, tzinfo=UTC), 2, 45.0, 2),
                        (datetime(2026, 3, 14, 12, 15, tzinfo=UTC), 1, 60.0, 1)]
        hourly = conn.execute("SELECT readings, max_energy_kwh - min_energy_kwh FROM ioc.lighting_1h").fetchone()
        assert hourly is not None and hourly[0] == 3 and hourly[1] == pytest.approx(20 / 60)
        traffic = conn.execute("SELECT sum(vehicles), sum(congested_readings) FROM ioc.traffic_15m").fetchone()
        assert traffic == (25, 1)
        laeq = conn.execute("SELECT 10 * log(laeq_energy) FROM ioc.environment_15m").fetchone()
        assert laeq is not None and laeq[0] == pytest.approx(67.4, abs=0.05)  # energy mean, not 65


def test_plain_schema_stays_plain_when_timescaledb_appears(plain_database: str) -> None:
    from tests.conftest import TIMESCALEDB

    if not TIMESCALEDB:
        pytest.skip("needs a server offering TimescaleDB")
    report = migrate(plain_database, "auto")
    assert report.storage_path == "plain"
    assert info(plain_database).timescaledb_offered
