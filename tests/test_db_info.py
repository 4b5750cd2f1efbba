"""`ioc db info` right after a first load shows the rows really stored and each table's time range."""

from __future__ import annotations

import re

import psycopg
import pytest
from typer.testing import CliRunner

from ioc.db import stats
from ioc.db.migrate import info
from ioc_cli import app
from testkit.broker import MosquittoBroker
from testkit.feeds import lamp_feed, lamps, register, wait_for
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_db_info_after_ingesting_a_small_feed_shows_exact_rows_and_time_range(
        database: str, storage: str, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = lamps(30)
    register(database, devices)
    feed = lamp_feed(devices, per_device=40)  # readings k minutes after 2026-03-14 11:00 UTC, k < 40
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_all(feed)
        assert wait_for(database, "SELECT count(*) FROM ioc.lighting_readings", 1200) == 1200
        assert ingest.stop() == 0
    with psycopg.connect(database, autocommit=True) as conn:  # what a planner estimate says at this point
        estimate = conn.execute("SELECT approximate_row_count('ioc.lighting_readings')" if storage == "timescaledb"
                                else "SELECT reltuples FROM pg_class WHERE oid = 'ioc.lighting_readings'::regclass"
                                ).fetchone()
    assert estimate is not None and estimate[0] != 1200  # why counting is needed: not analysed yet

    monkeypatch.setenv("IOC_DATABASE_URL", database)
    result = CliRunner().invoke(app, ["db", "info"])
    assert result.exit_code == 0, result.output
    lines = {m.group(1): m.group(2) for m in re.finditer(r"ioc\.(\w+)\s+(.*)", result.output)}
    assert re.match(r"1,200 rows\s+2026-03-14 11:00 UTC → 2026-03-14 11:39 UTC\s+backfill 1,200$",
                    lines["lighting_readings"]), lines["lighting_readings"]
    assert re.match(r"30 rows$", lines["devices"].strip())
    assert re.match(r"0 rows$", lines["water_readings"].strip())

    # past the exact-count threshold the estimate is shown, and says so
    monkeypatch.setattr(stats, "EXACT_COUNT_BELOW", 0)
    big = {t.name: t for t in info(database).tables}
    assert not big["lighting_readings"].exact and big["lighting_readings"].first is not None
    result = CliRunner().invoke(app, ["db", "info"])
    assert "(estimate)" in result.output
