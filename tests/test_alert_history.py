"""Alert history through the real API (uvicorn) on a real PostgreSQL: Alertmanager's webhook is authenticated and
validated, storage is idempotent, active and recent alerts are served, operators acknowledge."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from services.api.keys import ROLES, create_key
from testkit.apiserver import ApiServer
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration


@dataclass
class Api:
    url: str
    dsn: str
    keys: dict[str, str]

    def post(self, path: str, body: Any, role: str | None = "operator", raw: bytes | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        if raw is not None:
            return httpx.post(self.url + path, content=raw, headers={**headers, "Content-Type": "application/json"})
        return httpx.post(self.url + path, json=body, headers=headers, timeout=10)

    def get(self, path: str, role: str = "viewer", **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers={"X-API-Key": self.keys[role]}, timeout=10)

    def stored(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute("SELECT fingerprint, status, notifications FROM ioc.alerts ORDER BY 1").fetchall()


@pytest.fixture(scope="module")
def server() -> Iterator[Api]:
    """One database and server for the module (the alert tables are plain tables on both storage paths)."""
    yield from _server()


def _server() -> Iterator[Api]:
    for dsn in migrated_database("plain"):
        with psycopg.connect(dsn) as conn:
            keys = {role: create_key(conn, f"{role}-key", role)[1] for role in ROLES}
        with ApiServer(dsn, api_key_cache_s=0) as api_server:
            yield Api(api_server.url, dsn, keys)


@pytest.fixture
def api(server: Api) -> Api:
    with psycopg.connect(server.dsn) as conn:
        conn.execute("TRUNCATE ioc.alerts CASCADE")
    return server


ALERT = {
    "status": "firing",
    "labels": {"alertname": "CabinetTripped", "severity": "critical", "signal": "data", "city": "dien-bien-phu",
               "ward": "Him Lam", "area": "CAB-0042", "area_type": "cabinet", "site": "Võ Nguyên Giáp"},
    "annotations": {"summary": "Tủ điện chiếu sáng CAB-0042 bị nhảy aptomat / mất nguồn",
                    "description": "Lighting cabinet CAB-0042 has tripped.", "where": "Him Lam / Võ Nguyên Giáp",
                    "runbook": "Send the lighting crew."},
    "startsAt": "2026-12-07T20:30:00.123456789Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=ioc_fleet_cabinet_tripped",
    "fingerprint": "5e3c1f0a9b7d2e41",
}


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": '{}:{alertname="CabinetTripped"}', "truncatedAlerts": 0, "status": status,
            "receiver": "page", "groupLabels": {"alertname": "CabinetTripped"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


def resolved(alert: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "status": "resolved", "endsAt": "2026-12-07T21:15:00Z"}


def test_webhook_needs_an_operator_key(api: Api) -> None:
    assert api.post("/v1/alerts/webhook", notification(ALERT), role=None).status_code == 401
    assert api.post("/v1/alerts/webhook", notification(ALERT), role="viewer").status_code == 403
    assert api.stored() == []


def _broken() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for what, change in [("no version", lambda n: n.pop("version")), ("version 3", lambda n: n.update(version="3")),
                         ("no alerts", lambda n: n.update(alerts=[])),
                         ("no alertname", lambda n: n["alerts"][1]["labels"].pop("alertname")),
                         ("bad fingerprint", lambda n: n["alerts"][1].update(fingerprint="../etc")),
                         ("bad status", lambda n: n["alerts"][1].update(status="pending")),
                         ("naive start", lambda n: n["alerts"][1].update(startsAt="2026-12-07T20:30:00")),
                         ("labels not strings", lambda n: n["alerts"][1]["labels"].update(area=7))]:
        body = notification(ALERT, {**copy.deepcopy(ALERT), "fingerprint": "77aa"})
        change(body)
        cases.append((what, body))
    return cases


@pytest.mark.parametrize(("what", "body"), _broken(), ids=[c[0] for c in _broken()])
def test_malformed_notification_is_refused_whole(api: Api, what: str, body: Any) -> None:
    r = api.post("/v1/alerts/webhook", body)
    assert r.status_code == 422, (what, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert api.stored() == []  # the first, valid alert of the same delivery is not stored either


def test_invalid_json_is_refused(api: Api) -> None:
    assert api.post("/v1/alerts/webhook", None, raw=b'{"version": "4", "alerts": [').status_code == 422
    assert api.stored() == []


def test_firing_twice_is_one_record_then_resolved_stays_resolved(api: Api) -> None:
    for _ in range(2):
        r = api.post("/v1/alerts/webhook", notification(ALERT))
        assert r.status_code == 200 and r.json() == {"stored": 1}
    assert api.stored() == [(ALERT["fingerprint"], "firing", 2)]
    active = api.get("/v1/alerts/active").json()
    assert len(active) == 1
    a = active[0]
    assert (a["alertname"], a["area"], a["ward"], a["city"], a["severity"]) == \
        ("CabinetTripped", "CAB-0042", "Him Lam", "dien-bien-phu", "critical")
    assert a["annotations"]["summary"].startswith("Tủ điện") and a["ends_at"] is None and a["acks"] == []

    assert api.post("/v1/alerts/webhook", notification(resolved(ALERT), status="resolved")).status_code == 200
    assert api.post("/v1/alerts/webhook", notification(ALERT)).status_code == 200  # a late retry of the firing one
    assert api.stored() == [(ALERT["fingerprint"], "resolved", 4)]
    assert api.get("/v1/alerts/active").json() == []
    recent = api.get("/v1/alerts", since="2026-01-01T00:00:00Z").json()
    assert [(r["status"], r["ends_at"]) for r in recent] == [("resolved", "2026-12-07T21:15:00Z")]
    assert api.get("/v1/alerts", status="firing", since="2026-01-01T00:00:00Z").json() == []

    # the always-firing Watchdog is kept (its heartbeat) but is not an active alert for operators
    watchdog = {**ALERT, "labels": {"alertname": "Watchdog", "severity": "none"}, "fingerprint": "0dd"}
    assert api.post("/v1/alerts/webhook", notification(watchdog)).status_code == 200
    assert api.get("/v1/alerts/active").json() == []
    assert "Watchdog" in [a["alertname"] for a in api.get("/v1/alerts", since="2026-01-01T00:00:00Z").json()]

    # the same alert firing again later is a new occurrence
    again = {**ALERT, "startsAt": "2026-12-08T19:00:00Z"}
    assert api.post("/v1/alerts/webhook", notification(again)).status_code == 200
    assert [a["starts_at"] for a in api.get("/v1/alerts/active").json()] == ["2026-12-08T19:00:00Z"]


def test_operator_acknowledges_viewer_cannot(api: Api) -> None:
    assert api.post("/v1/alerts/webhook", notification(ALERT)).status_code == 200
    path = f"/v1/alerts/{ALERT['fingerprint']}/ack"
    assert api.post(path, {"comment": "xem"}, role="viewer").status_code == 403
    assert api.post(path, {}, role=None).status_code == 401
    r = api.post(path, {"comment": "Đội chiếu sáng đang tới tủ CAB-0042"}, role="operator")
    assert r.status_code == 200, r.text
    acks = r.json()["acks"]
    assert [(k["acked_by"], k["comment"]) for k in acks] == [("operator-key", "Đội chiếu sáng đang tới tủ CAB-0042")]
    assert api.post(path, None, role="admin").status_code == 200
    kept = api.get("/v1/alerts/active").json()[0]["acks"]
    assert [k["acked_by"] for k in kept] == ["operator-key", "admin-key"] and all(k["acked_at"] for k in kept)
    assert api.post("/v1/alerts/ffff0000/ack", {}, role="operator").status_code == 404
    assert api.post(path, {"starts_at": "2020-01-01T00:00:00Z"}, role="operator").status_code == 404
