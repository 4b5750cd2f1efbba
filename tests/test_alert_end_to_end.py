"""The whole alerting chain on a short clock: devices publish over MQTT → real ingest → PostgreSQL → the fleet
exporter → real Prometheus (the repo's rules, `for:`/`keep_firing_for:` scaled 1/60: a minute is a second) →
real Alertmanager (the repo's template: the pager is a webhook sink, the history is the real API).

  1. a cabinet trips and its 20 lamps go offline: exactly one page (CabinetTripped), no per-lamp or per-area echo,
     then exactly one resolved page when power returns;
  2. the Nậm Rốm rises: river alerts reach the history in the order of alarm levels I, II, III;
  3. ingest is killed: "IngestDown" pages, and the outage alerts that the silence then raises are not paged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ioc.registry import Device
from ioc_cli.alerting import TEMPLATE, render
from services.api.keys import create_key
from testkit.apiserver import ApiServer
from testkit.broker import MosquittoBroker
from testkit.feeds import register
from testkit.fleet import FleetExporterProcess
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher
from testkit.prometheus import AlertmanagerServer, PrometheusServer, WebhookSink, scaled_rule_files
from tests.conftest import migrated_database

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[1]
C = "dien-bien-phu"
WARD = "Him Lam"
INTERVAL_S = 5  # every test device reports every 2 s and declares 5 s: silent after 15 s
CLOCK = 1 / 60  # rule durations: 1 min → 1 s


def device(device_id: str, family: str, kind: str, parent: str | None = None, ward: str | None = WARD,
           **metadata: Any) -> Device:
    return Device(device_id=device_id, family=family, kind=kind, city=C, ward=ward, site="Võ Nguyên Giáp",
                  lat=21.39, lon=103.02, report_interval_s=INTERVAL_S, parent_id=parent, metadata=metadata)


# Two cabinets in one ward (so one trip is a cabinet outage, not a ward outage) and one river gauge.
FLEET = ([device(f"CAB-000{c}", "lighting", "cabinet") for c in (1, 2)]
         + [device(f"SL-0001-{i:03d}", "lighting", "streetlight", parent="CAB-0001") for i in range(20)]
         + [device(f"SL-0002-{i:03d}", "lighting", "streetlight", parent="CAB-0002") for i in range(30)]
         + [device("RG-01", "environment", "river_gauge", ward=None, alarm_levels_m=[3.0, 3.5, 4.0])])

BY_ID = {d.device_id: d for d in FLEET}


def topic(d: Device, channel: str) -> str:
    return f"ioc/v1/{d.city}/{d.family}/{d.device_id}/{channel}"


class City(threading.Thread):
    """Publishes every device's telemetry every 2 s; a tripped cabinet's lamps stay silent."""

    def __init__(self, publisher: Publisher) -> None:
        super().__init__(name="city", daemon=True)
        self.pub = publisher
        self.stop = threading.Event()
        self.tripped: set[str] = set()
        self.river_m = 2.5
        self.lock = threading.Lock()

    def send(self, d: Device, channel: str, body: Any) -> None:
        self.pub.publish(topic(d, channel), body if isinstance(body, bytes) else json.dumps(body).encode())

    def run(self) -> None:
        while not self.stop.is_set():
            now = datetime.now(UTC).isoformat()
            with self.lock:
                for d in FLEET:
                    if d.kind == "streetlight" and d.parent_id not in self.tripped:
                        self.send(d, "telemetry", {"dateObserved": now, "powerState": "on", "powerConsumption": 80.0,
                                                   "voltage": 229.0})
                    elif d.kind == "cabinet":
                        volts = 0.0 if d.device_id in self.tripped else 229.0
                        self.send(d, "telemetry", {"dateObserved": now, "powerState": "on",
                                                   "voltage": {"R": volts, "S": volts, "T": volts}})
                    elif d.kind == "river_gauge":
                        self.send(d, "telemetry", {"dateObserved": now, "currentLevel": self.river_m})
            self.stop.wait(2)

    def trip(self, cabinet: str) -> None:
        with self.lock:
            self.tripped.add(cabinet)
            now = datetime.now(UTC).isoformat()
            trip = {"dateObserved": now, "eventType": "cabinetTrip", "severity": "critical"}
            self.send(BY_ID[cabinet], "event", trip)
            for d in FLEET:
                if d.parent_id == cabinet:
                    self.send(d, "telemetry", {"dateObserved": now, "powerState": "off", "powerConsumption": 0.0})
                    self.send(d, "status", b"offline")

    def restore(self, cabinet: str) -> None:
        with self.lock:
            self.tripped.discard(cabinet)
            now = datetime.now(UTC).isoformat()
            self.send(BY_ID[cabinet], "event", {"dateObserved": now, "eventType": "powerRestored", "severity": "info"})
            for d in FLEET:
                if d.parent_id == cabinet:
                    self.send(d, "status", b"online")


class Stack:
    def __init__(self, dsn: str, broker: MosquittoBroker, ingest: IngestProcess, prometheus: PrometheusServer,
                 sink: WebhookSink, api: ApiServer, key: str) -> None:
        self.dsn, self.broker, self.ingest, self.prom, self.sink, self.api, self.key = (
            dsn, broker, ingest, prometheus, sink, api, key)

    def pages(self, status: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Pager notifications, one per (notification, alert): (alertname, status, labels)."""
        out = []
        for n in self.sink.notifications("/pager")[since:]:
            if status is None or n["status"] == status:
                out.append(n)
        return out

    def history(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.api.url}/v1/alerts", params={"since": "2020-01-01T00:00:00Z", "limit": 1000},
                      headers={"X-API-Key": self.key}, timeout=10)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()
        return result

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        return [a for a in self.prom.alerts("firing") if a["labels"]["alertname"] == alertname]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Stack, City]]:
    for dsn in migrated_database("plain"):
        register(dsn, FLEET)
        with psycopg.connect(dsn) as conn:
            _, operator_key = create_key(conn, "alertmanager", "operator")
            _, viewer_key = create_key(conn, "wall", "viewer")
        token = tmp_path / "token"
        token.write_text(operator_key)
        with MosquittoBroker() as broker, IngestProcess(dsn, broker.url) as ingest, \
                FleetExporterProcess(dsn, IOC_FLEET_CACHE_S="0") as fleet, ApiServer(dsn) as api, \
                WebhookSink() as sink:
            ingest.wait_connected()
            fleet.wait_ready()
            config = render(TEMPLATE.read_text(), {
                "IOC_PAGER_WEBHOOK_URL": f"{sink.url}/pager", "IOC_ALERT_WEBHOOK_URL": f"{api.url}/v1/alerts/webhook",
                "IOC_ALERT_WEBHOOK_TOKEN_FILE": str(token),
                "IOC_ALERT_GROUP_WAIT": "1s", "IOC_ALERT_GROUP_INTERVAL": "2s"})
            rules = scaled_rule_files(sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")), CLOCK,
                                      tmp_path / "rules")
            with AlertmanagerServer(config) as am, Publisher(broker.host, broker.port, "e2e-city") as pub, \
                    PrometheusServer(targets={"ioc-ingest": [f"127.0.0.1:{ingest.metrics_port}"],
                                              "ioc-fleet": [fleet.address]},
                                     rule_files=rules, alertmanager=am.url) as prom:
                city = City(pub)
                city.start()
                try:
                    yield Stack(dsn, broker, ingest, prom, sink, api, viewer_key), city
                finally:
                    city.stop.set()
                    city.join(10)


def settle(s: Stack) -> None:
    """Until every device reported and nothing but the Watchdog fires (start-up `absent()` races resolved)."""
    def quiet() -> bool:
        fleet_ok = s.prom.value('sum(ioc_fleet_devices_silent{city="dien-bien-phu"})') == 0
        others = [a for a in s.prom.alerts() if a["labels"]["alertname"] != "Watchdog"]
        return fleet_ok and not others
    s.prom.wait_for(quiet, 60, 0.5, "a quiet, fully reporting city")


def test_one_page_per_outage_river_in_order_ingest_down_silences_data(stack: tuple[Stack, City]) -> None:
    s, city = stack
    settle(s)
    s.sink.clear()

    # 1. cabinet trip: one page, then one resolve ------------------------------------------------------------
    tripped_at = time.monotonic()
    city.trip("CAB-0001")
    s.prom.wait_for(lambda: s.pages("firing"), 60, 0.25, "a page for the trip")
    time_to_page = time.monotonic() - tripped_at
    # the lamps' outage fires too (Prometheus), but Alertmanager keeps it off the pager
    s.prom.wait_for(lambda: [a for a in s.firing("AreaOutage") if a["labels"]["area"] == "CAB-0001"], 30, 0.25,
                    "the cabinet's AreaOutage firing in Prometheus")
    time.sleep(4)  # two group intervals: anything else that would page has had its chance
    firing = s.pages("firing")
    assert len(firing) == 1, firing
    assert [a["labels"]["alertname"] for a in firing[0]["alerts"]] == ["CabinetTripped"]
    assert firing[0]["alerts"][0]["labels"]["area"] == "CAB-0001"

    city.restore("CAB-0001")
    s.prom.wait_for(lambda: s.pages("resolved"), 60, 0.25, "the resolved page")
    time.sleep(4)
    assert len(s.pages("firing")) == 1 and len(s.pages("resolved")) == 1, s.pages()
    assert [a["labels"]["alertname"] for a in s.pages("resolved")[0]["alerts"]] == ["CabinetTripped"]
    stored = [a for a in s.history() if a["alertname"] == "CabinetTripped"]
    assert [(a["status"], a["area"]) for a in stored] == [("resolved", "CAB-0001")]
    assert stored[0]["annotations"]["summary"].startswith("Tủ điện chiếu sáng CAB-0001")

    # 2. the river rises through alarm levels I, II, III ------------------------------------------------------
    for level, metres in (("I", 3.2), ("II", 3.7), ("III", 4.2)):
        city.river_m = metres
        s.prom.wait_for(lambda lv=level: [a for a in s.history() if a["labels"].get("alarm_level") == lv], 60, 0.5,
                        f"river alarm level {level} in the history")
    river = sorted((a for a in s.history() if a["alertname"] == "RiverAboveAlarmLevel"),
                   key=lambda a: a["first_received_at"])
    assert [a["labels"]["alarm_level"] for a in river] == ["I", "II", "III"]
    paged = {a["labels"]["alarm_level"] for n in s.pages("firing") for a in n["alerts"]
             if a["labels"]["alertname"] == "RiverAboveAlarmLevel"}
    assert paged <= {"II", "III"} and "II" in paged  # level I is a warning: history only

    # 3. ingest killed: IngestDown pages; the silence it causes does not --------------------------------------
    before = len(s.sink.notifications("/pager"))
    s.ingest.kill()
    s.prom.wait_for(lambda: [a for n in s.pages("firing", before) for a in n["alerts"]
                             if a["labels"]["alertname"] == "IngestDown"], 60, 0.25, "IngestDown paged")
    # every device is now silent: the outage alerts fire in Prometheus ...
    s.prom.wait_for(lambda: len([a for a in s.firing("AreaOutage")]) >= 2, 60, 0.5, "outage alerts firing")
    time.sleep(4)
    # ... and none of them, nor any other data alert, reaches the pager
    data_pages = [a for n in s.pages("firing", before) for a in n["alerts"] if a["labels"].get("signal") == "data"]
    assert data_pages == []
    print(f"\ncabinet trip → page: {time_to_page:.1f} s on the 1/60 clock")
