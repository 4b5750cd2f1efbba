"""The fleet exporter against a real database on both storage paths: each figure from the snapshot query, the
sandbox city kept apart, a database outage reported as ioc_fleet_database_up 0, and the cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ioc.registry import Device
from services.fleet import metrics
from services.fleet.collector import FleetCollector, lamps_scheduled_on
from services.fleet.query import DatabaseSource, Row
from testkit.feeds import register
from testkit.ports import free_port

pytestmark = pytest.mark.integration
C = "dien-bien-phu"
NIGHT = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)  # 03:00 in Điện Biên Phủ
NOON = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def dev(device_id: str, family: str, kind: str, interval: int = 300, city: str = C, ward: str | None = "Him Lam",
        parent: str | None = None, site: str | None = "Võ Nguyên Giáp", **metadata: Any) -> Device:
    return Device(device_id=device_id, family=family, kind=kind, city=city, ward=ward, site=site, lat=21.39,
                  lon=103.02, report_interval_s=interval, parent_id=parent, metadata=metadata)


def fleet() -> list[Device]:
    devices = [dev("CAB-1", "lighting", "cabinet", 900), dev("CAB-2", "lighting", "cabinet", 900, ward="Thanh An")]
    devices += [dev(f"SL-1-{i}", "lighting", "streetlight", 900, parent="CAB-1") for i in range(10)]
    devices += [dev(f"SL-2-{i}", "lighting", "streetlight", 900, ward="Thanh An", parent="CAB-2") for i in range(10)]
    devices += [dev("NP-1-1", "water", "network_point", ward="Thanh An", site="DMA-001", dma="DMA-001", role="inlet",
                    nominal_bar=3.0),
                dev("NP-1-2", "water", "network_point", ward="Thanh An", site="DMA-001", dma="DMA-001",
                    role="pressure", nominal_bar=3.0)]
    devices += [dev(f"WM-1-{i}", "water", "meter", 3600, ward="Thanh An", site="DMA-001", dma="DMA-001")
                for i in range(10)]
    devices += [dev("RG-01", "environment", "river_gauge", ward=None, site="Nậm Rốm", alarm_levels_m=[3.0, 3.5, 4.0]),
                dev("RG-02", "environment", "river_gauge", ward=None, site="Nậm Rốm", warning_level_m=3.5),
                dev("AQ-01", "environment", "air_quality", ward="Mường Thanh", site="Quảng trường"),
                dev("TC-01", "traffic", "counter", 60, ward="Mường Thanh", intersection="Ngã tư A", lanes=2)]
    devices += [dev(f"SIM-SL-{i}", "lighting", "streetlight", 900, city="sim-test", parent="SIM-CAB")
                for i in range(5)]
    return devices


SETUP = [
    # everyone heard just now, except: 8 lamps of CAB-1 said offline (after their last message), the sim lamps
    # silent for an hour, and a meter never heard of since it was registered four hours ago
    "UPDATE ioc.device_state SET last_seen = now(), last_reading_time = now() - interval '1 min', status = 'online'",
    """UPDATE ioc.device_state SET status = 'offline', status_changed_at = now() - interval '2 min',
              last_seen = now() - interval '3 min' WHERE device_id LIKE 'SL-1-%' AND device_id < 'SL-1-8'""",
    "UPDATE ioc.device_state SET last_seen = now() - interval '1 hour' WHERE device_id LIKE 'SIM-%'",
    "UPDATE ioc.devices SET created_at = now() - interval '4 hours' WHERE device_id = 'WM-1-9'",
    "UPDATE ioc.device_state SET last_seen = NULL, status = 'unknown' WHERE device_id = 'WM-1-9'",
    # lamps of CAB-2: older reading off, newest on (one lamp's newest off)
    """INSERT INTO ioc.lighting_readings (time, device_id, power_state)
       SELECT now() - interval '10 min', device_id, 'off' FROM ioc.devices WHERE parent_id = 'CAB-2'
       UNION ALL SELECT now() - interval '2 min', device_id, CASE WHEN device_id = 'SL-2-9' THEN 'off' ELSE 'on' END
       FROM ioc.devices WHERE parent_id = 'CAB-2'""",
    # CAB-1 tripped 5 min ago; CAB-2 tripped and was restored, and reports normal voltage since
    """INSERT INTO ioc.device_events (time, device_id, event_type, severity) VALUES
       (now() - interval '5 min', 'CAB-1', 'cabinetTrip', 'critical'),
       (now() - interval '30 min', 'CAB-2', 'cabinetTrip', 'critical'),
       (now() - interval '20 min', 'CAB-2', 'powerRestored', 'info')""",
    """INSERT INTO ioc.cabinet_readings (time, device_id, voltage_r_v, voltage_s_v, voltage_t_v) VALUES
       (now() - interval '10 min', 'CAB-2', 229, 230, 231), (now() - interval '10 min', 'CAB-1', 229, 230, 231)""",
    """INSERT INTO ioc.water_readings (time, device_id, flow_lph, pressure_bar) VALUES
       (now() - interval '20 min', 'NP-1-1', 9000, 3.0), (now() - interval '1 min', 'NP-1-1', 27000, 1.0),
       (now() - interval '1 min', 'NP-1-2', NULL, 2.7)""",
    """INSERT INTO ioc.environment_readings (time, device_id, water_level_m)
       VALUES (now() - interval '20 min', 'RG-01', 2.0), (now() - interval '2 min', 'RG-01', 3.6)""",
    """INSERT INTO ioc.environment_readings (time, device_id, pm25)
       SELECT now() - k * interval '1 hour', 'AQ-01', 60 FROM generate_series(0, 23) k
       UNION ALL SELECT now() - interval '30 hours', 'AQ-01', 500""",
    """INSERT INTO ioc.traffic_readings (time, device_id, lane_id, intensity, avg_speed_kmh, congested) VALUES
       (now() - interval '1 min', 'TC-01', 1, 30, 8, true), (now() - interval '1 min', 'TC-01', 2, 20, 30, false),
       (now() - interval '2 min', 'TC-01', 2, 30, 5, true)""",
]


def scrape(dsn: str, at: datetime = NIGHT) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    source = DatabaseSource(dsn, silent_factor=3.0, reading_window_s=1800, timeout_s=10)
    collector = FleetCollector(source, cache_s=0, latitude=21.386, longitude=103.017, clock=at.timestamp)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    source.close()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def pick(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> list[float]:
    return [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]


@pytest.fixture
def city(database: str) -> Iterator[str]:
    register(database, fleet())
    with psycopg.connect(database, autocommit=True) as conn:
        for statement in SETUP:
            conn.execute(statement)
    yield database


def test_snapshot_figures(city: str) -> None:
    s = scrape(city)
    assert pick(s, "ioc_fleet_database_up") == [1.0]
    # liveness by status and silent, per city/ward/family/kind
    assert pick(s, "ioc_fleet_devices", city=C, ward="Him Lam", kind="streetlight", status="offline") == [8.0]
    assert pick(s, "ioc_fleet_devices", city=C, ward="Him Lam", kind="streetlight", status="online") == [2.0]
    assert pick(s, "ioc_fleet_devices_silent", city=C, ward="Him Lam", kind="streetlight") == [8.0]
    # never heard since registration: not commissioned, so unknown but not silent (no outage for uninstalled areas)
    assert pick(s, "ioc_fleet_devices_silent", city=C, ward="Thanh An", kind="meter") == [0.0]
    assert pick(s, "ioc_fleet_devices", city=C, ward="Thanh An", kind="meter", status="unknown") == [1.0]
    # per cabinet and DMA: lamps + the cabinet itself; meters + network points
    assert pick(s, "ioc_fleet_area_silent_ratio", city=C, area_type="cabinet", area="CAB-1") == [8 / 11]
    assert pick(s, "ioc_fleet_area_devices", city=C, area_type="cabinet", area="CAB-1", ward="Him Lam") == [11.0]
    assert pick(s, "ioc_fleet_area_silent_ratio", city=C, area_type="cabinet", area="CAB-2") == [0.0]
    assert pick(s, "ioc_fleet_area_silent_devices", city=C, area_type="dma", area="DMA-001") == [0.0]
    assert pick(s, "ioc_fleet_area_devices", city=C, area_type="dma", area="DMA-001", ward="Thanh An") == [12.0]
    # the sandbox city is its own label value, never mixed into the real one
    assert pick(s, "ioc_fleet_area_silent_ratio", city="sim-test", area="SIM-CAB") == [1.0]
    assert pick(s, "ioc_fleet_devices", city="sim-test", kind="streetlight") == [5.0]
    # lamps at night: reporting lamps expected on, those whose newest reading is on
    assert pick(s, "ioc_fleet_lamp_schedule_on") == [1.0]
    assert pick(s, "ioc_fleet_lamps_expected_on", city=C, ward="Thanh An") == [10.0]
    assert pick(s, "ioc_fleet_lamps_reporting_on", city=C, ward="Thanh An") == [9.0]
    # cabinets: CAB-1's trip is newer than its last reading; CAB-2 restored
    assert pick(s, "ioc_fleet_cabinet_tripped", city=C, area="CAB-1", site="Võ Nguyên Giáp") == [1.0]
    assert pick(s, "ioc_fleet_cabinet_tripped", city=C, area="CAB-2") == [0.0]
    # critical devices: gauges, stations, DMA inlets (not the pressure point)
    assert pick(s, "ioc_fleet_critical_silent", city=C, device="NP-1-1", kind="network_point", area="DMA-001") == [0]
    assert pick(s, "ioc_fleet_critical_silent", device="NP-1-2") == []
    assert pick(s, "ioc_fleet_critical_reading_age_seconds", device="RG-01", area=C)[0] == pytest.approx(60, abs=30)
    # river level and alarm levels I/II/III (RG-02 has a single warning level from the simulator's metadata)
    assert pick(s, "ioc_fleet_river_level_meters", city=C, device="RG-01", site="Nậm Rốm") == [pytest.approx(3.6)]
    assert sorted((dict(ls)["level"], v) for (n, ls), v in s.items()
                  if n == "ioc_fleet_river_alarm_level_meters" and ("device", "RG-01") in ls) == \
        [("1", 3.0), ("2", 3.5), ("3", 4.0)]
    assert pick(s, "ioc_fleet_river_alarm_level_meters", device="RG-02", level="1") == [3.5]
    # PM2.5: the last 24 h only
    assert pick(s, "ioc_fleet_pm25_24h_mean_ugm3", device="AQ-01", ward="Mường Thanh") == [pytest.approx(60)]
    assert pick(s, "ioc_fleet_pm25_24h_samples", device="AQ-01") == [24.0]
    # water: the lowest pressure share of the DMA's points, and the newest inlet flow
    assert pick(s, "ioc_fleet_dma_pressure_ratio", city=C, area="DMA-001", ward="Thanh An") == \
        [pytest.approx(1 / 3, rel=1e-3)]
    assert pick(s, "ioc_fleet_dma_inlet_flow_lph", area="DMA-001") == [27000.0]
    # traffic: newest reading per lane
    assert pick(s, "ioc_fleet_intersection_congested_ratio", area="Ngã tư A") == [0.5]
    assert pick(s, "ioc_fleet_intersection_speed_kmh", area="Ngã tư A") == [pytest.approx(19)]
    assert pick(s, "ioc_fleet_city_last_seen_age_seconds", city=C)[0] < 30
    # every documented metric is what the exporter serves, and nothing else
    assert {n for n, _ in s} <= {spec.name for spec in metrics.ALL}
    assert {spec.name for spec in metrics.ALL} - {n for n, _ in s} == set()


def test_by_day_no_lamp_is_expected_on(city: str) -> None:
    s = scrape(city, NOON)
    assert pick(s, "ioc_fleet_lamp_schedule_on") == [0.0]
    assert pick(s, "ioc_fleet_lamps_expected_on", city=C, ward="Thanh An") == [0.0]
    assert lamps_scheduled_on(NIGHT, 21.386, 103.017) and not lamps_scheduled_on(NOON, 21.386, 103.017)


def test_database_down_is_reported_and_data_series_vanish() -> None:
    s = scrape(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    assert pick(s, "ioc_fleet_database_up") == [0.0]
    assert not [n for n, _ in s if n not in ("ioc_fleet_database_up", "ioc_fleet_snapshot_duration_seconds",
                                             "ioc_fleet_snapshot_timestamp_seconds")]


class CountingSource:
    def __init__(self) -> None:
        self.calls = 0

    def fetch(self) -> list[Row]:
        self.calls += 1
        return [Row("status", [C, "Him Lam", "lighting", "streetlight", "online"], 3.0, 1.0)]


def test_cache_bounds_queries_per_scrape() -> None:
    now = [1000.0]
    source = CountingSource()
    collector = FleetCollector(source, cache_s=10, latitude=21.386, longitude=103.017, clock=lambda: now[0])
    for _ in range(3):
        list(collector.collect())
    assert source.calls == 1
    now[0] += 11
    families = {f.name: f for f in collector.collect()}
    assert source.calls == 2
    assert [s.value for s in families["ioc_fleet_devices_silent"].samples] == [1.0]


def test_background_refresh_serves_scrapes_without_querying() -> None:
    import threading
    import time

    source = CountingSource()
    collector = FleetCollector(source, cache_s=0.2, latitude=21.386, longitude=103.017)
    stop = threading.Event()
    thread = collector.refresh_in_background(stop)
    try:
        deadline = time.monotonic() + 5
        while source.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.calls >= 3  # refreshed on its own, no scrape needed
        calls = source.calls
        for _ in range(20):
            list(collector.collect())
        assert source.calls - calls <= 1  # scrapes render the snapshot (at most the thread's own next refresh)
    finally:
        stop.set()
        thread.join(2)


def test_readme_documents_every_metric() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for spec in metrics.ALL:
        assert f"| `{spec.name}` | {', '.join(spec.labels) or '—'} |" in readme, spec.name


class FlakySource(CountingSource):
    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def fetch(self) -> list[Row]:
        if self.failing:
            raise psycopg.OperationalError("connection refused")
        return super().fetch()


def test_a_database_blip_keeps_the_last_snapshot_then_drops_it() -> None:
    now = [1000.0]
    source = FlakySource()
    collector = FleetCollector(source, cache_s=0, latitude=21.386, longitude=103.017, clock=lambda: now[0])

    def names() -> dict[str, list[float]]:
        return {f.name: [s.value for s in f.samples] for f in collector.collect()}

    assert names()["ioc_fleet_database_up"] == [1.0]
    source.failing = True
    now[0] += 60
    blip = names()
    assert blip["ioc_fleet_database_up"] == [0.0] and blip["ioc_fleet_devices"] == [3.0]
    now[0] += 300
    outage = names()
    assert outage["ioc_fleet_database_up"] == [0.0] and "ioc_fleet_devices" not in outage


def test_exposition_renders_once_per_snapshot() -> None:
    from prometheus_client import CollectorRegistry

    from services.fleet.collector import Exposition

    now = [1000.0]
    source = CountingSource()
    collector = FleetCollector(source, cache_s=10, latitude=21.386, longitude=103.017, clock=lambda: now[0])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    exposition = Exposition(registry, collector)
    first = exposition()
    assert exposition() is first and source.calls == 1
    assert b'ioc_fleet_devices{city="dien-bien-phu",family="lighting",kind="streetlight",status="online",' \
           b'ward="Him Lam"} 3.0' in first
    now[0] += 11
    assert exposition() is not first and source.calls == 2


def test_the_service_serves_metrics_and_health(city: str) -> None:
    import httpx

    from testkit.fleet import FleetExporterProcess

    with FleetExporterProcess(city) as exporter:  # default settings: background snapshot every 10 s
        exporter.wait_ready()
        text = exporter.metrics_text()
        assert 'ioc_fleet_cabinet_tripped{area="CAB-1"' in text and "ioc_fleet_database_up 1.0" in text
        health = httpx.get(f"http://{exporter.address}/health", timeout=5)
        assert health.status_code == 200 and health.json()["database_ok"] is True
