"""The city status page in headless Chromium: it draws every device the API returns, shows the API's counts,
and logs nothing to the console."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import psycopg
import pytest

from ioc.db.migrate import migrate
from services.api.keys import create_key
from simulators.fleet import build_fleet
from testkit.apiserver import ApiServer
from testkit.browser import chromium, load
from testkit.city import seed
from testkit.databases import create_database, drop_database
from tests.conftest import PG_SERVER

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(chromium() is None, reason="chromium not installed (scripts/ensure-system.sh)")]


class _Dom(HTMLParser):
    """Attributes by element id, and the table rows' cells by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._table: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.by_id[str(a["id"])] = a
        if tag == "table":
            self._table = a.get("id")
            self.tables[str(self._table)] = []
        elif tag == "tr" and self._table and "data-group" in a:
            self.tables[self._table].append({})
        elif tag == "td" and self._table:
            self._cell = a.get("class")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._table and self._cell and self.tables[self._table]:
            self.tables[self._table][-1][self._cell] = data


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ApiServer, str]]:
    dsn = create_database(PG_SERVER)
    try:
        migrate(dsn, "off")
        fleet = build_fleet("smoke")
        end = int(time.time()) // 3600 * 3600
        seed(dsn, fleet, end - 3600, end)
        with psycopg.connect(dsn) as conn:
            key = create_key(conn, "page", "viewer")[1]
            # some colour: a cabinet's lamps went offline
            conn.execute("UPDATE ioc.device_state SET status = 'offline' WHERE device_id LIKE 'SL-0002-%'")
            conn.commit()
        with ApiServer(dsn) as server:
            yield server, key
    finally:
        drop_database(PG_SERVER, dsn)


def test_status_page_draws_the_devices_and_counts_the_api_returns(served: tuple[ApiServer, str]) -> None:
    server, key = served
    page = load(f"{server.url}/#key={key}")
    assert page.console == []
    dom = _Dom()
    dom.feed(page.dom)
    assert dom.by_id["error"].get("hidden") is not None  # no error shown
    headers = {"X-API-Key": key}
    devices: list[dict[str, Any]] = httpx.get(f"{server.url}/v1/latest?city=dien-bien-phu", headers=headers).json()
    placed = [d for d in devices if d["lat"] is not None]
    canvas = dom.by_id["map"]
    assert int(str(canvas["data-devices"])) == len(placed) > 0
    assert json.loads(str(canvas["data-states"])) == dict(Counter(d["state"] for d in devices))
    assert json.loads(str(canvas["data-states"]))["offline"] > 0
    for table, group_by in (("by-family", "family"), ("by-ward", "ward")):
        api_rows = httpx.get(f"{server.url}/v1/kpis/status", params={"city": "dien-bien-phu", "group_by": group_by},
                             headers=headers).json()
        shown = dom.tables[table]
        assert [int(r["total"]) for r in shown] == [r["total"] for r in api_rows]
        assert [int(r["offline"]) for r in shown] == [r["offline"] for r in api_rows]
        assert [int(r["silent"]) for r in shown] == [r["silent"] for r in api_rows]
    areas = dom.tables["offline-areas"]
    dark_street = next(d.site for d in build_fleet("smoke") if d.device_id == "SL-0002-001")
    assert areas and areas[0]["group"] == dark_street and int(areas[0]["down"]) >= 20  # the darkest street first


def test_status_page_without_a_key_asks_for_one(served: tuple[ApiServer, str]) -> None:
    server, _ = served
    page = load(f"{server.url}/", budget_ms=3000)
    assert page.console == []
    dom = _Dom()
    dom.feed(page.dom)
    assert dom.by_id["login"].get("hidden") is None
    assert dom.by_id["map"]["data-devices"] == "0"
