"""Every Prometheus panel query evaluated by a real Prometheus scraping the real services.

Ingest (subprocess, fed by the smoke fleet through a real Mosquitto, plus one malformed message), the fleet
exporter (``ioc fleet-metrics`` subprocess) and the API (uvicorn) run against one database; Prometheus scrapes
them every second. Each query is rendered as Grafana renders it (``$__rate_interval`` for a 1 s scrape
interval, variables at their defaults) and must return at least one finite value, and every metric it names
must exist in Prometheus — a renamed metric would otherwise leave a panel silently empty.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
import pytest

import dashboards
from dashboards.macros import TimeRange
from dashboards.queries import RANGES, panel_queries, selection
from ioc.registry import upsert_devices
from simulators.fleet import build_fleet
from simulators.generator import hourly_batches
from testkit.apiserver import ApiServer
from testkit.broker import MosquittoBroker
from testkit.fleet import FleetExporterProcess
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher
from testkit.prometheus import PrometheusServer, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMMITTED = [dashboards.load(p) for p in sorted(dashboards.OUTPUT.rglob("*.json"))]
PROM_QUERIES = [(d, q) for d in COMMITTED for q in panel_queries(d) if q.language == "promql"]
SCRAPE_MS = 1000
_METRIC_RE = re.compile(r"\b(ioc_[a-z0-9_]+)\b")


class Stack:
    def __init__(self, prometheus: PrometheusServer) -> None:
        self.prometheus = prometheus


def _keep_alive(host: str, port: int, api_url: str, stop: threading.Event) -> None:
    """A live city keeps ingest committing and the API answering, so rate() and histogram_quantile() over the
    last minute have samples while the queries are checked."""
    with Publisher(host, port, client_id="dash-live") as pub, httpx.Client(timeout=5) as http:
        while not stop.wait(0.5):
            pub.publish("ioc/v1/dien-bien-phu/lighting/SL-0001-001/status", b"online")
            http.get(f"{api_url}/healthz")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    from tests.conftest import migrated_database

    for dsn in migrated_database("plain"):
        fleet = build_fleet("smoke")
        with psycopg.connect(dsn) as conn:
            upsert_devices(conn, fleet)
        with FleetExporterProcess(dsn, IOC_FLEET_CACHE_S="0") as exporter, MosquittoBroker() as broker, \
                IngestProcess(dsn, broker.url) as ingest, ApiServer(dsn) as api:
            ingest.wait_connected()
            exporter.wait_ready()
            api_host = api.url.split("://", 1)[1]
            targets = {"ioc-ingest": [f"127.0.0.1:{ingest.metrics_port}"],
                       "ioc-fleet": [exporter.address], "ioc-api": [api_host]}
            with PrometheusServer(targets=targets, scrape_interval="1s") as prom:
                end = int(time.time()) // 60 * 60
                host, port = broker.url.split("://", 1)[1].rsplit(":", 1)
                with Publisher(host, int(port), client_id="dash-test") as pub:
                    for batch in hourly_batches(fleet, 3, end - 2 * 3600, end):
                        pub.publish_all((m.topic, m.payload) for m in batch)
                        pub.flush()
                        time.sleep(1.5)  # spread the load over several scrapes: rates need two samples
                    pub.publish("ioc/v1/dien-bien-phu/lighting/SL-0001-001/telemetry", b"{not json")
                    pub.flush()
                live = threading.Event()
                feeder = threading.Thread(target=_keep_alive, args=(host, int(port), api.url, live), daemon=True)
                feeder.start()
                prom.wait_for(lambda: prom.query('sum(ioc_ingest_rejected_total) > 0') and
                              prom.query('ioc_fleet_database_up == 1') and
                              prom.query("ioc_api_request_duration_seconds_count"), timeout=60)
                time.sleep(3)  # a few more scrapes after the last message
                try:
                    yield Stack(prom)
                finally:
                    live.set()
                    feeder.join(10)


@pytest.mark.parametrize(("dashboard", "query"), PROM_QUERIES, ids=[q.name for _, q in PROM_QUERIES])
def test_prometheus_panel_query_returns_data(stack: Stack, dashboard: dict[str, object], query: object) -> None:
    from dashboards.queries import PanelQuery

    assert isinstance(query, PanelQuery)
    prom = stack.prometheus
    for metric in set(_METRIC_RE.findall(query.text)):
        series = metric.removesuffix("_bucket")
        assert prom.query(f'count({{__name__=~"{series}(_bucket)?"}})'), f"{query.name}: no series {metric}"
    variables = selection(dashboard, {}, {"city": ["dien-bien-phu"]})
    for span in RANGES.values():
        expr = query.promql(TimeRange.last(span), SCRAPE_MS, variables)
        result = wait_for(lambda e=expr: prom.query(e), timeout=10, what=f"{query.name}: {expr}")  # type: ignore[misc]
        values = [float(r["value"][1]) for r in result]
        assert any(math.isfinite(v) for v in values), f"{query.name}: {expr} gave {values}"
        assert prom.query_range(expr, TimeRange.last(timedelta(minutes=2)).start,
                                TimeRange.last(timedelta(0)).end, step="5s"), f"{query.name}: empty range query"
