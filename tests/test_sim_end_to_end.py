"""The simulated city through the real broker and the real ingest into PostgreSQL: what the simulators
publish is what gets stored, scenarios leave their signature in the data, and a replay stores nothing twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ioc.registry import Device
from ioc.settings import MqttUrl
from services.ingest.decode import DeviceInfo, decode
from simulators.fleet import build_fleet
from simulators.generator import stream
from simulators.publisher import publish_fleet
from simulators.recording import record, replay
from testkit.broker import MosquittoBroker
from testkit.feeds import register, wait_for
from testkit.ingest import IngestProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TABLES = ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings", "environment_readings")
SEED = 7


def expected_rows(fleet: list[Device], start: int, end: int, scenarios: tuple[str, ...] = ()) -> Counter[str]:
    """Rows per table the ingest should store: the simulators' own stream through the (pure) decoder."""
    devices = {d.device_id: DeviceInfo(d.kind, d.family, d.city, d.gateway_id) for d in fleet}
    now = datetime.now(UTC)
    rows: Counter[str] = Counter()
    for message in stream(fleet, SEED, start, end, scenarios):
        out = decode(message.topic, message.payload, devices, now)
        if out.table and out.rows:
            rows[out.table] += len(out.rows)
    return rows


def stored_rows(dsn: str) -> Counter[str]:
    with psycopg.connect(dsn) as conn:
        return Counter({t: conn.execute(f"SELECT count(*) FROM ioc.{t}").fetchone()[0]  # type: ignore[index]
                        for t in (*TABLES, "device_events")})


def wait_stable(dsn: str, expected: Counter[str], timeout: float = 120) -> Counter[str]:
    """Stored rows once every table holds what was expected (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    rows = stored_rows(dsn)
    while any(rows[t] < expected[t] for t in expected) and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = stored_rows(dsn)
    return rows


@pytest.fixture
def city(database: str, broker: MosquittoBroker) -> Iterator[tuple[str, MosquittoBroker, list[Device]]]:
    fleet = build_fleet("smoke", seed=SEED)
    register(database, fleet)
    with IngestProcess(database, broker.url) as ingest:
        ingest.wait_connected()
        yield database, broker, fleet
        assert ingest.proc.poll() is None, ingest.log_text()[-2000:]


def test_smoke_fleet_fills_every_family_within_a_minute(city: tuple[str, MosquittoBroker, list[Device]]) -> None:
    dsn, broker, fleet = city
    end = int(time.time()) // 60 * 60
    start = end - 2 * 3600
    expected = expected_rows(fleet, start, end)
    started = time.monotonic()
    summary = publish_fleet(fleet, MqttUrl.parse(broker.url), seed=SEED, start=start, duration_s=end - start,
                            speed=0, offline_at_end=False)
    assert summary.complete and summary.total_acked == summary.total_published
    rows = wait_stable(dsn, expected, timeout=60 - (time.monotonic() - started))
    assert time.monotonic() - started < 60
    for table in TABLES:
        assert rows[table] == expected[table] > 0, table
    assert rows["device_events"] == expected["device_events"]
    with psycopg.connect(dsn) as conn:
        rejected = conn.execute("SELECT reason, count(*) FROM ioc.rejected_messages GROUP BY 1").fetchall()
        online = conn.execute("SELECT count(*) FROM ioc.device_state WHERE status = 'online'").fetchone()
    assert rejected == []
    assert online is not None and online[0] >= len([d for d in fleet if not d.gateway_id]) // 2


def test_scenarios_leave_their_signature(city: tuple[str, MosquittoBroker, list[Device]]) -> None:
    dsn, broker, fleet = city
    end = int(time.time()) // 60 * 60
    start = end - 3 * 3600
    summary = publish_fleet(fleet, MqttUrl.parse(broker.url), seed=SEED, start=start, duration_s=end - start,
                            speed=0, scenarios=["cabinet-trip@1h", "water-burst@1h"], offline_at_end=False)
    assert summary.complete
    expected = expected_rows(fleet, start, end, ("cabinet-trip@1h", "water-burst@1h"))
    wait_stable(dsn, expected)
    with psycopg.connect(dsn) as conn:
        q = conn.execute
        tripped = q("SELECT device_id FROM ioc.device_events WHERE event_type = 'cabinetTrip'").fetchall()
        assert len(tripped) == 1
        cabinet = tripped[0][0]
        # Solar lamps have their own panel and battery: a feeder trip does not touch them.
        lamps = [d.device_id for d in fleet if d.parent_id == cabinet and d.kind == "streetlight"
                 and d.metadata["lamp_type"] != "solar"]
        assert lamps
        # every lamp of the tripped cabinet went offline and reported zero power during the trip
        offline = q("SELECT DISTINCT device_id FROM ioc.device_status_changes WHERE status = 'offline' "
                    "AND device_id = ANY(%s)", (lamps,)).fetchall()
        assert {r[0] for r in offline} == set(lamps)
        dark = q("SELECT count(DISTINCT device_id) FROM ioc.lighting_readings WHERE device_id = ANY(%s) "
                 "AND power_w = 0 AND power_state = 'off' AND time >= %s",  # the last gasp is at the trip
                 (lamps, datetime.fromtimestamp(start + 3600, UTC))).fetchone()
        assert dark == (len(lamps),)
        # a burst: pressure drops in one district metered area only
        by_area = q("""SELECT d.metadata->>'dma' AS dma,
                              min(w.pressure_bar) FILTER (WHERE w.time < %(burst)s) AS before,
                              min(w.pressure_bar) FILTER (WHERE w.time >= %(burst)s) AS during
                       FROM ioc.water_readings w JOIN ioc.devices d USING (device_id)
                       WHERE d.kind = 'network_point' AND w.pressure_bar IS NOT NULL
                       GROUP BY 1""", {"burst": datetime.fromtimestamp(start + 3600, UTC)}).fetchall()
        dropped = [area for area, before, during in by_area if during is not None and during < 0.6 * before]
        assert len(by_area) >= 2 and len(dropped) == 1, by_area
        assert q("SELECT count(*) FROM ioc.device_events WHERE event_type = 'burst'").fetchone()[0] >= 1  # type: ignore[index]


def test_record_then_replay_at_50x_stores_the_same_readings_once(
        city: tuple[str, MosquittoBroker, list[Device]], tmp_path: Path, storage: str) -> None:
    import threading

    from tests.conftest import migrated_database

    dsn, broker, fleet = city
    url = MqttUrl.parse(broker.url)
    file = tmp_path / "feed.iocrec"
    ready, stop = threading.Event(), threading.Event()
    recorder = threading.Thread(target=record, args=(url, "ioc/v1/#", file),
                                kwargs={"ready": ready, "stop": stop}, daemon=True)
    recorder.start()
    assert ready.wait(10)
    end = int(time.time()) // 60 * 60
    summary = publish_fleet(fleet, url, seed=SEED, start=end - 1800, duration_s=1800, speed=0,
                            offline_at_end=False)
    expected = expected_rows(fleet, end - 1800, end)
    live = wait_stable(dsn, expected)
    time.sleep(1)
    stop.set()
    recorder.join(30)
    assert file.stat().st_size > 0

    # into a second database: the replay stores exactly what the live run stored, and again nothing more
    for replica in migrated_database(storage):
        register(replica, fleet)
        with IngestProcess(replica, broker.url, worker=1, IOC_INGEST_SHARED_GROUP="replica") as second:
            second.wait_connected()
            first = replay(file, url, speed=50, statuses=True)  # statuses too, as into a separate database
            assert first.total_acked == summary.total_published
            assert wait_stable(replica, expected) == live
            replay(file, url, speed=50, statuses=True)
            key = 'ioc_ingest_duplicate_rows_total{table="lighting_readings"}'
            deadline = time.monotonic() + 60
            while second.metrics().get(key, 0) < live["lighting_readings"] and time.monotonic() < deadline:
                time.sleep(0.5)
            assert second.metrics().get(key) == live["lighting_readings"]
            assert stored_rows(replica) == live
    assert stored_rows(dsn) == live  # the live database saw both replays too, and stored nothing twice
    assert wait_for(dsn, "SELECT count(*) FROM ioc.rejected_messages", 0) == 0
