"""The query API against a real PostgreSQL seeded with the simulated smoke city, on both storage paths:
every endpoint, auth per role, limits, bad parameters, empty results, newer-wins latest, rollups = raw."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
import pytest

from ioc.db.migrate import migrate
from ioc.registry import Device
from services.api.keys import create_key
from simulators.fleet import build_fleet, replace_device
from testkit.apiserver import ApiServer
from testkit.city import register, seed, write_messages
from testkit.databases import create_database, drop_database
from tests.conftest import PG_SERVER, STORAGE_PATHS, require_storage

pytestmark = pytest.mark.integration

ROLLUP_VIEWS = [f"ioc.{f}_{w}" for f in ("lighting", "cabinet", "water", "traffic", "environment")
                for w in ("15m", "1h")]


@dataclass
class Api:
    url: str
    dsn: str
    storage: str
    keys: dict[str, str]
    fleet: list[Device]
    start: datetime  # seeded range, hour-aligned
    end: datetime

    def get(self, path: str, role: str | None = "viewer", **params: Any) -> httpx.Response:
        headers = {"X-API-Key": self.keys[role]} if role else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=30)

    def send(self, method: str, path: str, role: str | None = "admin", body: Any = None) -> httpx.Response:
        headers = {"X-API-Key": self.keys[role]} if role else {}
        return httpx.request(method, self.url + path, json=body, headers=headers, timeout=30)


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"].startswith("/problems/") and body["detail"]
    return body


@pytest.fixture(scope="module", params=STORAGE_PATHS)
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    storage: str = request.param
    require_storage(storage)
    dsn = create_database(PG_SERVER)
    try:
        migrate(dsn, "on" if storage == "timescaledb" else "off")
        fleet = build_fleet("smoke")
        end = int(time.time()) // 3600 * 3600
        seed(dsn, fleet, end - 86400, end)
        # A sandbox replay of the same city: left out of queries that name no city.
        register(dsn, [replace_device(d, device_id="SIM-" + d.device_id, city="sim-dien-bien-phu") for d in fleet[:5]])
        if storage == "timescaledb":
            with psycopg.connect(dsn, autocommit=True) as conn:
                for view in ROLLUP_VIEWS:
                    conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
        keys: dict[str, str] = {}
        with psycopg.connect(dsn) as conn:
            for role in ("viewer", "operator", "admin"):
                keys[role] = create_key(conn, f"test-{role}", role)[1]  # type: ignore[arg-type]
            keys["revoked"] = create_key(conn, "test-revoked", "admin")[1]
            conn.execute("UPDATE ioc.api_keys SET revoked_at = now() WHERE name = 'test-revoked'")
            conn.commit()
        with ApiServer(dsn, api_key_cache_s=0) as server:
            yield Api(server.url, dsn, storage, keys, fleet, datetime.fromtimestamp(end - 86400, UTC),
                      datetime.fromtimestamp(end, UTC))
    finally:
        drop_database(PG_SERVER, dsn)


# --- operations and auth --------------------------------------------------------------------------------------

def test_health_is_open_and_metrics_count_requests(api: Api) -> None:
    assert api.get("/healthz", role=None).json() == {"status": "ok"}
    assert api.get("/readyz", role=None).json() == {"status": "ok"}
    api.get("/v1/devices", limit=1)
    text = api.get("/metrics", role=None).text
    assert 'ioc_api_requests_total{method="GET",route="/v1/devices",status="200"}' in text
    assert 'ioc_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/devices"}' in text
    assert api.get("/openapi.json", role=None).json()["info"]["title"]


@pytest.mark.parametrize("path", ["/v1/devices", "/v1/latest", "/v1/kpis/status", "/v1/rejects", "/v1/cities"])
def test_missing_unknown_and_revoked_keys_get_401(api: Api, path: str) -> None:
    assert "api key" in _problem(api.get(path, role=None), 401)["detail"].lower()
    r = httpx.get(api.url + path, headers={"X-API-Key": "ioc_not-a-key"})
    _problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    _problem(api.get(path, role="revoked"), 401)
    # the same key works as a bearer token
    ok = httpx.get(api.url + path, headers={"Authorization": f"Bearer {api.keys['viewer']}"}, timeout=30)
    assert ok.status_code == 200


def test_roles(api: Api) -> None:
    device = {"device_id": "TEST-ROLE-1", "family": "water", "kind": "meter", "city": "dien-bien-phu",
              "report_interval_s": 3600}
    for role in ("viewer", "operator"):
        body = _problem(api.send("POST", "/v1/devices", role, device), 403)
        assert "admin" in body["detail"]
    assert api.send("POST", "/v1/devices", "admin", device).status_code == 201


def test_cors_is_off_unless_configured(api: Api) -> None:
    r = httpx.options(api.url + "/v1/devices", headers={"Origin": "http://evil.example",
                                                        "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    with ApiServer(api.dsn, api_cors_origins="http://ops.local") as other:
        r = httpx.get(other.url + "/healthz", headers={"Origin": "http://ops.local"})
        assert r.headers["access-control-allow-origin"] == "http://ops.local"


# --- devices -----------------------------------------------------------------------------------------------------

def test_device_pages_follow_next_links_and_exclude_sandbox_cities(api: Api) -> None:
    seen: list[str] = []
    r = api.get("/v1/devices", limit=37)
    while True:
        page = r.json()
        assert len(page["items"]) <= 37
        seen += [d["device_id"] for d in page["items"]]
        if page["next"] is None:
            break
        r = httpx.get(page["next"], headers={"X-API-Key": api.keys["viewer"]})
    assert seen == sorted(seen)  # id order, no repeats across pages
    assert [s for s in seen if not s.startswith("TEST-")] == sorted(d.device_id for d in api.fleet)
    assert not any(s.startswith("SIM-") for s in seen)
    sandbox = api.get("/v1/devices", city="sim-dien-bien-phu").json()["items"]
    assert [d["device_id"] for d in sandbox] == sorted("SIM-" + d.device_id for d in api.fleet[:5])


def test_device_filters(api: Api) -> None:
    lamps = [d for d in api.fleet if d.kind == "streetlight"]
    ward = lamps[0].ward
    got = api.get("/v1/devices", city="dien-bien-phu", kind="streetlight", ward=ward, limit=1000).json()
    assert {d["device_id"] for d in got["items"]} == {d.device_id for d in lamps if d.ward == ward}
    cab = lamps[0].parent_id
    got = api.get("/v1/devices", parent=cab, limit=1000).json()["items"]
    assert {d["device_id"] for d in got} == {d.device_id for d in lamps if d.parent_id == cab}
    lat, lon = lamps[0].lat, lamps[0].lon
    assert lat is not None and lon is not None
    box = f"{lon - 0.0001},{lat - 0.0001},{lon + 0.0001},{lat + 0.0001}"
    got = api.get("/v1/devices", bbox=box).json()["items"]
    assert lamps[0].device_id in {d["device_id"] for d in got} and len(got) < 10
    # seeded just now: everything that reported is online, gateways (status only) never spoke
    water = api.get("/v1/devices", family="water", limit=1000).json()["items"]
    assert {d["state"] for d in water if not d["device_id"].startswith("TEST-")} == {"online"}
    silent = api.get("/v1/devices", silent="true", limit=1000).json()["items"]
    assert silent and all(d["kind"] == "gateway" or d["device_id"].startswith("TEST") for d in silent)
    assert api.get("/v1/devices", ward="Nowhere").json() == {"items": [], "next": None}


def test_one_device_and_geojson(api: Api) -> None:
    lamp = next(d for d in api.fleet if d.kind == "streetlight")
    d = api.get(f"/v1/devices/{lamp.device_id}").json()
    assert d["kind"] == "streetlight" and d["metadata"] == lamp.metadata and d["state"] == "online"
    assert d["last_reading"]["power_w"] >= 0 and d["last_reading_at"] is not None
    assert d["last_reading_at"].endswith("Z") or "+" in d["last_reading_at"]
    _problem(api.get("/v1/devices/NO-SUCH-DEVICE"), 404)
    r = api.get("/v1/devices.geojson", kind="counter", limit=1000)
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    counters = [d for d in api.fleet if d.kind == "counter"]
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(counters)
    f = fc["features"][0]
    assert f["geometry"]["type"] == "Point" and f["geometry"]["coordinates"][0] > 100  # lon first
    assert api.get("/v1/devices.geojson", kind="counter", limit=2).json()["links"][0]["rel"] == "next"


def test_admin_registers_updates_and_decommissions(api: Api) -> None:
    device = {"device_id": "TEST-WM-1", "family": "water", "kind": "meter", "city": "dien-bien-phu",
              "ward": "Thanh An", "report_interval_s": 3600, "metadata": {"note": "test"}}
    assert api.send("POST", "/v1/devices", body=device).status_code == 201
    _problem(api.send("POST", "/v1/devices", body=device), 409)
    bad = {**device, "kind": "streetlight"}  # kind of another family: the import's own validation
    assert "belongs to family" in _problem(api.send("PUT", "/v1/devices/TEST-WM-1", body=bad), 422)["detail"]
    _problem(api.send("PUT", "/v1/devices/OTHER", body=device), 422)
    _problem(api.send("POST", "/v1/devices", body={**device, "surprise": 1}), 422)
    r = api.send("PUT", "/v1/devices/TEST-WM-1", body={**device, "ward": "Mường Thanh"})
    assert r.status_code == 200 and r.json()["ward"] == "Mường Thanh"
    topic = "ioc/v1/dien-bien-phu/water/TEST-WM-1/telemetry"
    meter = Device.model_validate(device)
    write_messages(api.dsn, [meter], [(topic, b'{"dateObserved": "2026-01-01T00:00:00+07:00", "flow": 1.5}')])
    r = api.send("POST", "/v1/devices/TEST-WM-1/decommission")
    assert r.status_code == 200 and r.json()["state"] == "decommissioned" and r.json()["decommissioned_at"]
    _problem(api.send("POST", "/v1/devices/NOPE/decommission"), 404)
    # history stays
    s = api.get("/v1/series", device="TEST-WM-1", metric="flow_lph", fn="count", interval="1d", source="raw",
                start="2025-12-31T00:00:00+07:00", end="2026-01-02T00:00:00+07:00").json()
    assert [p["value"] for p in s["points"]] == [1]
    # ingest refuses its new messages (registry cache loaded after the decommission)
    from services.ingest.decode import decode
    from services.ingest.registry_cache import RegistryCache
    cache = RegistryCache(api.dsn)
    cache.load_all()
    out = decode(topic, b'{"dateObserved": "2026-01-02T00:00:00+07:00", "flow": 1}', cache, datetime.now(UTC))
    cache.reset()
    assert [r.reason for r in out.rejections] == ["decommissioned_device"]


# --- latest ------------------------------------------------------------------------------------------------------

def test_latest_of_many_is_one_streamed_array(api: Api) -> None:
    r = api.get("/v1/latest", city="dien-bien-phu")
    items = r.json()
    ids = [i["device_id"] for i in items]
    assert set(ids) >= {d.device_id for d in api.fleet} and not any(i.startswith("SIM-") for i in ids)
    counters = api.get("/v1/latest", kind="counter").json()
    assert counters and all(len(i["reading"]["lanes"]) >= 2 for i in counters)
    some = [d.device_id for d in api.fleet[:3]]
    assert [i["device_id"] for i in api.get("/v1/latest", ids=",".join(some)).json()] == sorted(some)
    nd = api.get("/v1/latest", kind="noise", format="ndjson")
    assert nd.headers["content-type"].startswith("application/x-ndjson")
    assert [orjson.loads(line)["kind"] for line in nd.text.splitlines()] == ["noise"] * sum(
        d.kind == "noise" for d in api.fleet)
    assert api.get("/v1/latest", ward="Nowhere").json() == []


def test_latest_is_newest_reading_time_not_last_arrival(api: Api) -> None:
    device = Device.model_validate({"device_id": "TEST-AQ-9", "family": "environment", "kind": "air_quality",
                                    "city": "dien-bien-phu", "report_interval_s": 300})
    register(api.dsn, [device])
    topic = "ioc/v1/dien-bien-phu/environment/TEST-AQ-9/telemetry"
    assert api.get("/v1/devices/TEST-AQ-9/latest").json()["reading"] is None  # nothing yet: empty, not an error
    write_messages(api.dsn, [device], [(topic, b'{"dateObserved": "2026-03-14T18:10:00+07:00", "pm25": 20}')])
    write_messages(api.dsn, [device], [(topic, b'{"dateObserved": "2026-03-14T18:05:00+07:00", "pm25": 99}')])
    latest = api.get("/v1/devices/TEST-AQ-9/latest").json()
    assert latest["reading"] == {"pm25": 20} and latest["time"].startswith("2026-03-14T11:10:00")
    # within one batch too, and a batch array whose newest reading is not last
    write_messages(api.dsn, [device], [
        (topic, b'[{"dateObserved": "2026-03-14T18:30:00+07:00", "pm25": 30},'
                b' {"dateObserved": "2026-03-14T18:20:00+07:00", "pm25": 25}]'),
        (topic, b'{"dateObserved": "2026-03-14T18:15:00+07:00", "pm25": 15}')])
    assert api.get("/v1/devices/TEST-AQ-9/latest").json()["reading"] == {"pm25": 30}
    _problem(api.get("/v1/devices/NOPE/latest"), 404)


# --- series ------------------------------------------------------------------------------------------------------

def _series(api: Api, **params: Any) -> dict[str, Any]:
    r = api.get("/v1/series", **params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _close(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        x == y or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9))
        for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("selector", "metric", "fn"), [
    ({"device": "SL-0001-001"}, "power_w", "avg"),
    ({"device": "SL-0001-001"}, "power_w", "max"),
    ({"kind": "streetlight", "ward": "Mường Thanh"}, "power_w", "avg"),
    ({"kind": "counter"}, "intensity", "sum"),
    ({"kind": "meter"}, "consumption_m3", "max"),
    ({"kind": "network_point"}, "pressure_bar", "min"),
    ({"kind": "air_quality"}, "pm25", "avg"),
    ({"family": "water"}, "flow_lph", "count"),
])
@pytest.mark.parametrize("interval", ["15m", "3h", "1d"])
def test_rollup_series_match_raw(api: Api, selector: dict[str, str], metric: str, fn: str, interval: str) -> None:
    common = {**selector, "metric": metric, "fn": fn, "interval": interval, "start": api.start.isoformat(),
              "end": api.end.isoformat(), "tz": "Asia/Ho_Chi_Minh"}
    raw = _series(api, **common, source="raw")
    rolled = _series(api, **common, source="rollup")
    assert raw["source"].endswith("_readings") and rolled["source"].endswith(("_1h", "_15m"))
    assert raw["points"] and [p["time"] for p in raw["points"]] == [p["time"] for p in rolled["points"]]
    assert _close([p["value"] for p in raw["points"]], [p["value"] for p in rolled["points"]])


def test_series_buckets_are_local_and_any_width(api: Api) -> None:
    day = _series(api, kind="counter", metric="intensity", fn="sum", interval="1d", start=api.start.isoformat(),
                  end=api.end.isoformat())
    assert all(p["time"].endswith("T00:00:00+07:00") for p in day["points"])
    utc = _series(api, kind="counter", metric="intensity", fn="sum", interval="1d", tz="UTC",
                  start=api.start.isoformat(), end=api.end.isoformat())
    assert all(p["time"].endswith("T00:00:00Z") or p["time"].endswith("+00:00") for p in utc["points"])
    assert sum(p["value"] for p in day["points"]) == sum(p["value"] for p in utc["points"])
    odd = _series(api, device="TC-001", metric="intensity", fn="sum", interval="7m",
                  start=(api.end - timedelta(hours=2)).isoformat(), end=api.end.isoformat())
    times = [datetime.fromisoformat(p["time"]) for p in odd["points"]]
    assert all((b - a) % timedelta(minutes=7) == timedelta(0) for a, b in itertools.pairwise(times))
    last = _series(api, device="TC-001", metric="intensity", fn="last", interval="1h",
                   start=(api.end - timedelta(hours=3)).isoformat(), end=api.end.isoformat())
    assert len(last["points"]) == 3


def test_series_gap_filling_and_empty(api: Api) -> None:
    start, end = api.end + timedelta(hours=1), api.end + timedelta(hours=4)  # nothing stored there
    common = {"device": "TC-001", "metric": "intensity", "fn": "sum", "interval": "1h", "start": start.isoformat(),
              "end": end.isoformat()}
    assert _series(api, **common)["points"] == []
    assert [p["value"] for p in _series(api, **common, fill="null")["points"]] == [None, None, None]
    assert [p["value"] for p in _series(api, **common, fill="zero")["points"]] == [0, 0, 0]


def test_series_limits_and_bad_parameters(api: Api) -> None:
    base = {"device": "TC-001", "metric": "intensity"}
    body = _problem(api.get("/v1/series", **base, interval="1m", start="2026-01-01T00:00:00+07:00",
                            end="2026-04-01T00:00:00+07:00"), 422)
    assert body["limit"] == "points" and body["maximum"] == 10_000
    assert "129601 points" in body["detail"] and "interval=15m" in body["detail"]
    body = _problem(api.get("/v1/series", **base, interval="1d", start="2020-01-01T00:00:00+07:00",
                            end="2026-01-01T00:00:00+07:00"), 422)
    assert body["limit"] == "range"
    for bad, word in (({"interval": "2w"}, "interval"), ({"interval": "30s"}, "interval"),
                      ({"interval": "2d"}, "interval"), ({"tz": "Mars/Olympus"}, "time zone"),
                      ({"start": "2026-01-01T00:00:00"}, "offset"), ({"metric": "pm25"}, "metric"),
                      ({"end": "2025-01-01T00:00:00+07:00"}, "after")):
        params = {**base, "start": "2026-01-01T00:00:00+07:00", "end": "2026-01-02T00:00:00+07:00", **bad}
        assert word in _problem(api.get("/v1/series", **params), 422)["detail"]
    _problem(api.get("/v1/series", metric="pm25", start="2026-01-01T00:00:00+07:00",
                     end="2026-01-02T00:00:00+07:00"), 422)
    _problem(api.get("/v1/series", device="NOPE", metric="pm25", start="2026-01-01T00:00:00+07:00",
                     end="2026-01-02T00:00:00+07:00"), 404)
    _problem(api.get("/v1/series", **base, start="2026-01-01T00:10:00+07:00", end="2026-01-02T00:00:00+07:00",
                     source="rollup"), 422)


def test_page_size_and_ids_limits(api: Api) -> None:
    body = _problem(api.get("/v1/devices", limit=5000), 422)
    assert body["limit"] == "limit" and "1000" in body["detail"]
    _problem(api.get("/v1/devices", cursor="!!"), 422)
    _problem(api.get("/v1/devices", cursor="bm90IGFuIGlkIQ"), 422)  # base64 of something that is no device id
    _problem(api.get("/v1/devices", bbox="1,2,3"), 422)
    _problem(api.get("/v1/devices", kind="toaster"), 422)
    many = ",".join(f"D-{i}" for i in range(1001))
    assert _problem(api.get("/v1/latest", ids=many), 422)["limit"] == "ids"
    assert _problem(api.get("/v1/kpis/lighting/energy", days=93), 422)["limit"] == "days"


def test_statement_timeout_answers_503_naming_it(api: Api) -> None:
    with ApiServer(api.dsn, api_statement_timeout_ms=200) as strict, psycopg.connect(api.dsn) as blocker:
        blocker.execute("LOCK TABLE ioc.devices IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        r = httpx.get(strict.url + "/v1/devices", headers={"X-API-Key": api.keys["viewer"]}, timeout=30)
        blocker.rollback()
    body = _problem(r, 503)
    assert body["limit"] == "statement_timeout" and "narrow the request" in body["detail"]


# --- KPIs ----------------------------------------------------------------------------------------------------------

def test_status_counts_agree_with_device_list(api: Api) -> None:
    rows = api.get("/v1/kpis/status", city="dien-bien-phu", group_by="family").json()
    items = api.get("/v1/latest", city="dien-bien-phu").json()
    for row in rows:
        members = [i for i in items if i["family"] == row["group"]]
        assert row["total"] == len(members)
        for state in ("online", "offline", "silent", "decommissioned"):
            assert row[state] == sum(i["state"] == state for i in members)
    wards = api.get("/v1/kpis/status", group_by="ward").json()
    assert {w["group"] for w in wards} >= {"Mường Thanh", "Thanh An"}


def test_lighting_kpis(api: Api) -> None:
    night = api.get("/v1/kpis/lighting", city="dien-bien-phu", at="2026-03-14T22:00:00+07:00").json()
    day = api.get("/v1/kpis/lighting", city="dien-bien-phu", at="2026-03-14T12:00:00+07:00").json()
    lamps = sum(d.kind == "streetlight" for d in api.fleet)
    assert night["night"] and not day["night"] and night["lamps"] == day["lamps"] == lamps
    assert night["expected_lit"] == lamps - night["faulty"] and day["expected_lit"] == 0
    assert night["dusk"].startswith("2026-03-14T18:") and night["smart_target"] == 0.35
    smart = sum(d.kind == "streetlight" and d.metadata["lamp_type"] != "sodium" for d in api.fleet)
    assert night["smart"] == smart and night["smart_target_met"] == (smart / lamps >= 0.35)
    energy = api.get("/v1/kpis/lighting/energy", city="dien-bien-phu", days=2, end=api.end.isoformat()).json()
    assert energy["days"] and all(d["kwh"] > 0 for d in energy["days"])
    summary = api.get("/v1/kpis/summary", city="dien-bien-phu", ward="Mường Thanh").json()
    assert summary["lighting"]["lamps"] > 0 and {s["group"] for s in summary["status"]} >= {"lighting"}


def test_water_traffic_and_environment_kpis(api: Api) -> None:
    local_day = (api.end - timedelta(hours=12)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    water = api.get("/v1/kpis/water", city="dien-bien-phu", day=local_day).json()
    dmas = {d.metadata.get("dma") for d in api.fleet if d.family == "water"}
    assert {a["dma"] for a in water["areas"]} == dmas
    area = water["areas"][0]
    assert area["meters"] == sum(d.kind == "meter" and d.metadata["dma"] == area["dma"] for d in api.fleet)
    assert area["min_pressure_bar"] is not None and area["min_pressure_bar"] <= area["avg_pressure_bar"]
    assert _problem(api.get("/v1/kpis/water", day="not-a-day"), 422)
    traffic = api.get("/v1/kpis/traffic", city="dien-bien-phu", minutes=120, end=api.end.isoformat()).json()
    crossings = {d.metadata["intersection"] for d in api.fleet if d.kind == "counter"}
    assert {i["intersection"] for i in traffic["intersections"]} == crossings
    raw = _series(api, kind="counter", metric="intensity", fn="sum", interval="1h", source="raw",
                  start=(api.end - timedelta(hours=2)).isoformat(), end=api.end.isoformat())
    assert sum(i["vehicles"] for i in traffic["intersections"]) == sum(p["value"] for p in raw["points"])
    assert _problem(api.get("/v1/kpis/traffic", minutes=5000), 422)["limit"] == "minutes"
    env = api.get("/v1/kpis/environment", city="dien-bien-phu", at=api.end.isoformat()).json()
    air = [s for s in env["stations"] if s["kind"] == "air_quality" and not s["device_id"].startswith("TEST-")]
    assert air and all(s["aqi_hourly"]["value"] >= 0 and s["aqi_daily"] is not None for s in air)
    assert all(s["pm25_24h_exceeds"] == (s["pm25_24h"] > 50) for s in air)
    noise = [s for s in env["stations"] if s["kind"] == "noise"]
    assert noise and all(s["laeq_day_db"] is not None and s["laeq_night_db"] is not None for s in noise)
    gauges = [s for s in env["stations"] if s["kind"] == "river_gauge"]
    assert gauges and all(s["alarm_levels_m"] and s["alarm"] is not None for s in gauges)


# --- rejects and city ------------------------------------------------------------------------------------------------

def test_rejects_browse_and_count(api: Api) -> None:
    lamp = next(d for d in api.fleet if d.kind == "streetlight")
    topic = f"ioc/v1/dien-bien-phu/lighting/{lamp.device_id}/telemetry"
    junk = b'{"dateObserved": "2026-03-14T18:05:00+07:00", "powerState": "on", "colour": "<script>' + \
        b"x" * 2000 + b'"}'
    write_messages(api.dsn, api.fleet, [(topic, junk), (topic, b"\xff\xfe{"), (topic, b"{}")])
    counts = {c["reason"]: c["count"] for c in api.get("/v1/rejects/counts", device=lamp.device_id).json()}
    assert counts == {"unexpected_field": 1, "bad_encoding": 1, "missing_field": 1}
    page = api.get("/v1/rejects", device=lamp.device_id, limit=2).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = httpx.get(page["next"], headers={"X-API-Key": api.keys["viewer"]}).json()
    items = page["items"] + rest["items"]
    assert len(items) == 3 and rest["next"] is None
    big = next(i for i in items if i["reason"] == "unexpected_field")
    assert big["truncated"] and big["payload_size"] == len(junk) and len(big["payload"]) == 1024
    assert big["payload"].startswith('{"dateObserved"')
    assert next(i for i in items if i["reason"] == "bad_encoding")["payload"] == "\ufffd\ufffd{"
    only = api.get("/v1/rejects", reason="unexpected_field", device=lamp.device_id).json()["items"]
    assert [i["id"] for i in only] == [big["id"]]
    assert api.get("/v1/rejects", since="2999-01-01T00:00:00+00:00").json() == {"items": [], "next": None}


def test_city_geometry(api: Api) -> None:
    assert api.get("/v1/cities").json()[0]["city"] == "dien-bien-phu"
    m = api.get("/v1/cities/dien-bien-phu/map")
    assert m.headers["content-type"] == "application/geo+json"
    layers = {f["properties"]["layer"] for f in m.json()["features"]}
    assert layers == {"street", "river", "ward", "intersection", "station"}
    assert api.get("/v1/cities/sim-dien-bien-phu/map").status_code == 200
    _problem(api.get("/v1/cities/atlantis/map"), 404)
