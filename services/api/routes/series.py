"""Series: one metric of one device, or aggregated over a set of devices, in buckets of any width from one
minute to one day aligned on local midnight of the requested zone; long aligned ranges read the rollups."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from ioc.contract.kinds import KINDS
from ioc.contract.topics import DEVICE_ID_RE
from services.api.config import ApiSettings
from services.api.deps import Db, Settings, Viewer
from services.api.params import Filter, aware, zone
from services.api.problems import ERRORS, Problem, limit_exceeded, not_found
from services.api.queries import series as q
from services.api.queries.filters import DeviceFilter
from services.api.storage import storage_path

router = APIRouter(prefix="/v1", tags=["series"], responses=ERRORS)

_INTERVAL_RE = re.compile(r"^(\d{1,5})(m|min|h|d)$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
# Widths suggested when a request has too many points, finest first.
LADDER = ("1m", "5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d")
# From this range on, auto reads a rollup (when exact): below it, raw is fast enough and always current.
ROLLUP_MIN_RANGE = timedelta(days=2)
FAMILY_TABLE = {"lighting": "lighting_readings", "water": "water_readings", "traffic": "traffic_readings",
                "environment": "environment_readings"}


class Point(BaseModel):
    time: datetime = Field(description="bucket start, in the requested zone")
    value: float | None


class Series(BaseModel):
    device_id: str | None
    metric: str
    fn: str
    interval: str
    tz: str
    start: datetime
    end: datetime
    source: str = Field(description="raw table or rollup the points were computed from")
    points: list[Point]


def parse_interval(text: str) -> timedelta:
    m = _INTERVAL_RE.match(text)
    if not m:
        raise Problem(422, "invalid-parameter", f"interval {text[:40]!r}: use minutes, hours or days, e.g. 1m, 15m, "
                      "90m, 1h, 6h, 1d")
    width = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    if not timedelta(minutes=1) <= width <= timedelta(days=1):
        raise Problem(422, "invalid-parameter", f"interval {text}: buckets are 1 minute to 1 day wide")
    return width


def _fmt(width: timedelta) -> str:
    s = int(width.total_seconds())
    return f"{s // 86400}d" if s % 86400 == 0 else f"{s // 3600}h" if s % 3600 == 0 else f"{s // 60}m"


def _check_size(start: datetime, end: datetime, width: timedelta, settings: ApiSettings) -> None:
    span = end - start
    if span > timedelta(days=settings.api_max_range_days):
        raise limit_exceeded("range", f"{span.total_seconds() / 86400:g} days", f"{settings.api_max_range_days} days",
                             f"ask for at most {settings.api_max_range_days} days per request and page by time")
    points = math.ceil(span / width) + 1
    if points > settings.api_max_points:
        fits = [w for w in LADDER if math.ceil(span / parse_interval(w)) + 1 <= settings.api_max_points]
        longest = width * (settings.api_max_points - 1)
        hint = (f"use interval={fits[0]}" if fits else "use a shorter range") + (
            f" or a range of at most {longest.total_seconds() / 86400:.4g} days at {_fmt(width)}")
        raise limit_exceeded("points", points, settings.api_max_points,
                             f"{span.total_seconds() / 86400:g} days at {_fmt(width)} is {points} points: {hint}")


class KindCache:
    """Device id → kind for single-device series, kept briefly: a kind hardly ever changes, and the lookup would
    otherwise be a second round trip on every request."""

    TTL_S = 60.0
    MAX = 100_000

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str]] = {}

    def kind(self, db: psycopg.Connection[Any], device_id: str) -> str | None:
        hit = self._items.get(device_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        row = db.execute("SELECT kind FROM ioc.devices WHERE device_id = %s", (device_id,)).fetchone()
        if row is None:
            return None
        if len(self._items) >= self.MAX:
            self._items.clear()
        self._items[device_id] = (now + self.TTL_S, str(row[0]))
        return str(row[0])


_KINDS = KindCache()


def _table_for(db: psycopg.Connection[Any], device_id: str | None, flt: DeviceFilter, metric: str) -> str:
    if device_id is not None:
        kind = _KINDS.kind(db, device_id)
        if kind is None:
            raise not_found(f"device {device_id!r}")
        table = KINDS[kind].table
        if table is None:
            raise Problem(422, "invalid-parameter", f"device {device_id!r} is a {kind}: it sends no readings")
    elif flt.kind is not None:
        table = KINDS[flt.kind].table
        if table is None:
            raise Problem(422, "invalid-parameter", "gateways send no readings")
    elif flt.family is not None and flt.family in FAMILY_TABLE:
        table = "cabinet_readings" if flt.family == "lighting" and metric == "power_kw" else FAMILY_TABLE[flt.family]
    else:
        raise Problem(422, "invalid-parameter", "say what to aggregate: device=ID, or kind= (or family=) with "
                      "optional city, ward, parent or ids")
    if metric not in q.METRICS[table]:
        raise Problem(422, "invalid-parameter", f"metric {metric!r} is not one of this kind's: "
                      f"{', '.join(q.METRICS[table])}")
    return table


@router.get("/series", summary="Bucketed series of one device or an aggregate over devices", response_model=Series)
def series(
    request: Request, db: Db, settings: Settings, _: Viewer, flt: Filter,
    metric: Annotated[str, Query(pattern=r"^[a-z0-9_]{1,40}$", description="e.g. power_w, flow_lph, pm25, intensity")],
    start: Annotated[datetime, Query(description="ISO 8601 with offset; inclusive")],
    end: Annotated[datetime, Query(description="ISO 8601 with offset; exclusive")],
    device: Annotated[str | None, Query(pattern=DEVICE_ID_RE.pattern, description="one device")] = None,
    fn: Annotated[Literal["avg", "min", "max", "sum", "count", "last"], Query()] = "avg",
    interval: Annotated[str, Query(max_length=10, description="bucket width, 1m–1d: 1m, 15m, 90m, 1h, 1d")] = "1h",
    tz: Annotated[str | None, Query(max_length=64, description="bucket alignment zone (default Asia/Ho_Chi_Minh)")]
    = None,
    fill: Annotated[Literal["none", "null", "zero"], Query(description="emit empty buckets as null or 0")] = "none",
    source: Annotated[Literal["auto", "raw", "rollup"], Query(description="auto: rollups where exact and "
                                                              "materialised (TimescaleDB)")] = "auto",
) -> Response:
    zone_name = tz or settings.api_default_tz
    tzinfo = zone(zone_name)
    start, end = aware("start", start), aware("end", end)
    if end <= start:
        raise Problem(422, "invalid-parameter", "end must be after start")
    width = parse_interval(interval)
    _check_size(start, end, width, settings)
    table = _table_for(db, device, flt, metric)
    local_start = start.astimezone(tzinfo)
    origin = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
    req = q.SeriesRequest(table, metric, fn, width, origin, start, end, device, flt, fill)
    rollup = q.rollup_for(req) if source != "raw" else None
    if source == "rollup" and rollup is None:
        raise Problem(422, "invalid-parameter", "no rollup gives this exactly: the interval must be a multiple of 15m, "
                      "start and end on 15-minute edges, and the metric/function one the rollups keep; use "
                      "source=auto")
    if source == "auto" and rollup is not None and (end - start < ROLLUP_MIN_RANGE
                                                    or storage_path(request.app, db) != "timescaledb"):
        # Plain PostgreSQL's rollups are views over the raw table: no faster, so read raw. Short ranges read raw
        # too: a reading back-filled after its bucket was materialised reaches the rollup at the next refresh.
        rollup = None
    points = q.run(db, req, rollup)
    # Serialised directly (the shape is Series): a month of hourly points through pydantic costs more than the query.
    body = {"device_id": device, "metric": metric, "fn": fn, "interval": _fmt(width), "tz": zone_name,
            "start": start.astimezone(tzinfo), "end": end.astimezone(tzinfo),
            "source": f"{q.ROLLUP_FAMILY[table]}_{rollup}" if rollup else table,
            "points": [{"time": t.astimezone(tzinfo), "value": v} for t, v in points]}
    return Response(orjson.dumps(body), media_type="application/json")
