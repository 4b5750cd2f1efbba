"""The registry knows only this version's kinds, and ingest's bookkeeping tables expire (real PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest

from ioc.contract.kinds import KINDS
from ioc.registry import Device, RegistryRefused, upsert_devices
from services.ingest.retention import AGE_COLUMNS, Retention
from testkit.feeds import count, lamps, register

pytestmark = pytest.mark.integration


def test_the_registry_constraint_lists_exactly_the_kinds_of_the_code(plain_database: str) -> None:
    with psycopg.connect(plain_database) as conn:
        row = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE conname = 'devices_kind_known'").fetchone()
    assert row is not None
    # a new kind in ioc/contract/kinds.py needs a migration that widens devices_kind_known
    assert set(re.findall(r"'(\w+)'", str(row[0]))) == set(KINDS)


def test_the_registry_refuses_an_unknown_kind_with_a_clear_error(plain_database: str) -> None:
    ghost = Device.model_construct(**{**lamps(1)[0].model_dump(), "kind": "solar_panel"})
    with psycopg.connect(plain_database) as conn, pytest.raises(RegistryRefused) as caught:
        upsert_devices(conn, [ghost])
    assert "solar_panel" in str(caught.value) and "ioc db migrate" in str(caught.value)
    assert count(plain_database, "SELECT count(*) FROM ioc.devices") == 0


def test_retention_deletes_only_what_is_past_its_age(database: str) -> None:
    register(database, lamps(1))
    with psycopg.connect(database, autocommit=True) as conn:
        for age in ("400 days", "10 days", "1 hour"):
            conn.execute("INSERT INTO ioc.rejected_messages (received_at, last_received_at, topic, reason, detail,"
                         " payload, payload_size) VALUES (now() - %s::interval, now() - %s::interval, 't', 'r', 'd',"
                         " '', 0)", (age, age))
            conn.execute("INSERT INTO ioc.device_events (time, device_id, event_type, severity)"
                         " VALUES (now() - %s::interval, 'LAMP0000', 'x', 'info')", (age,))
            conn.execute("INSERT INTO ioc.device_status_changes (time, device_id, status)"
                         " VALUES (now() - %s::interval, 'LAMP0000', 'online')", (age,))
        timescale = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None
    keep = {"rejected_messages": timedelta(days=30), "device_events": timedelta(days=5),
            "device_status_changes": timedelta(days=5)}
    deleted = Retention(database, keep, interval_s=3600).run_once()
    if timescale:  # the hypertables follow their TimescaleDB retention policies (400 days), not ingest
        assert deleted == {"rejected_messages": 1}
        assert count(database, "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = "
                     "'policy_retention' AND hypertable_name IN ('device_events', 'device_status_changes')") == 2
    else:
        assert deleted == {"rejected_messages": 1, "device_events": 2, "device_status_changes": 2}
    assert count(database, "SELECT count(*) FROM ioc.rejected_messages") == 2
    for table in AGE_COLUMNS:
        assert count(database, f"SELECT count(*) FROM ioc.{table} WHERE {AGE_COLUMNS[table]} > now() - "
                               "interval '2 hours'") == 1


def test_layers_import_only_downwards() -> None:
    """ioc/ is the shared core: it imports nothing above it; bench/ uses testkit/, never tests/."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rules = {"ioc": ("services", "simulators", "ioc_cli", "testkit", "tests", "bench"), "bench": ("tests",),
             "services": ("ioc_cli", "simulators", "testkit", "tests", "bench")}
    offences = []
    for package, forbidden in rules.items():
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                offences += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert offences == []
