"""The `ioc` command as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ioc.contract.schemas import all_schemas, render
from testkit.databases import create_database, drop_database
from tests.conftest import PG_SERVER

ROOT = Path(__file__).resolve().parents[1]


def ioc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ioc_cli", *args], cwd=ROOT, env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("IOC_MQTT_URL", "http://broker:1883", "IOC_MQTT_URL"),
    ("IOC_DATABASE_URL", "mysql://x", "IOC_DATABASE_URL"),
    ("IOC_TIMESCALEDB", "maybe", "IOC_TIMESCALEDB"),
    ("IOC_INGEST_BATCH_SIZE", "0", "IOC_INGEST_BATCH_SIZE"),
])
def test_a_bad_setting_exits_non_zero_naming_it(name: str, value: str, fragment: str) -> None:
    command = ("ingest",) if name.startswith("IOC_INGEST") else ("db", "info")
    result = ioc(*command, **{name: value})
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.integration
def test_migrate_info_and_import(tmp_path: Path) -> None:
    dsn = create_database(PG_SERVER)
    drop_database(PG_SERVER, dsn)  # `ioc db migrate` creates it
    try:
        first = ioc("db", "migrate", IOC_DATABASE_URL=dsn)
        assert first.returncode == 0, first.stderr
        assert "storage path:" in first.stdout and "applied  0001_registry.sql" in first.stdout
        again = ioc("db", "migrate", IOC_DATABASE_URL=dsn)
        assert "0 applied" in again.stdout
        fleet = tmp_path / "fleet.csv"
        fleet.write_text("device_id,family,kind,city,ward,site,lat,lon,report_interval_s,metadata\n"
                         "WM-001,water,meter,dien-bien-phu,Thanh An,,21.37,103.0,900,\"{\"\"dma\"\": \"\"DMA-3\"\"}\"\n"
                         "TC-001,traffic,counter,dien-bien-phu,Mường Thanh,đường 7-5,21.39,103.02,60,\n",
                         encoding="utf-8")
        imported = ioc("devices", "import", str(fleet), IOC_DATABASE_URL=dsn)
        assert imported.returncode == 0 and "imported 2 devices" in imported.stdout
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT metadata FROM ioc.devices WHERE device_id='WM-001'").fetchone() == (
                {"dma": "DMA-3"},)
            assert conn.execute("SELECT status FROM ioc.device_state WHERE device_id='TC-001'").fetchone() == (
                "unknown",)
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"device_id": "X1", "family": "water", "kind": "counter", "city": "dien-bien-phu",
                                   "report_interval_s": 60}) + "\n")
        refused = ioc("devices", "import", str(bad), IOC_DATABASE_URL=dsn)
        assert refused.returncode == 2 and "bad.jsonl:1" in refused.stderr and "traffic" in refused.stderr
        shown = ioc("db", "info", IOC_DATABASE_URL=dsn)
        assert shown.returncode == 0 and "storage path:" in shown.stdout and "ioc.devices" in shown.stdout
    finally:
        drop_database(PG_SERVER, dsn)


def test_exported_schemas_are_current() -> None:
    """schemas/ is what integrators download: regenerate with `ioc schemas` when the contract changes."""
    committed = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "schemas").glob("*.json")}
    assert committed == {name: render(schema) for name, schema in all_schemas().items()}
