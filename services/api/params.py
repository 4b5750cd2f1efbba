"""Query parameters shared by several routes: device filters, cursors, page sizes, times and zones."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Query, Request

from ioc.contract.kinds import KINDS
from ioc.contract.topics import CITY_RE, DEVICE_ID_RE
from services.api.config import ApiSettings
from services.api.deps import get_settings
from services.api.problems import Problem, limit_exceeded
from services.api.queries.filters import DeviceFilter

Family = Literal["lighting", "water", "traffic", "environment", "gateway"]
KindName = Literal["streetlight", "cabinet", "meter", "network_point", "counter", "air_quality", "noise", "weather",
                   "river_gauge", "gateway"]
assert set(KindName.__args__) == set(KINDS)  # type: ignore[attr-defined]
TEXT = r"^[^\x00]{1,200}$"  # free text filters: no NUL (PostgreSQL text cannot hold it), bounded

City = Annotated[str | None, Query(pattern=CITY_RE.pattern, description="city slug; without it, every city except "
                                   "sandbox ones (`sim-…`)")]
Ward = Annotated[str | None, Query(pattern=TEXT, description="ward name, e.g. `Mường Thanh`")]
IdsParam = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:,-]+$", max_length=100_000,
                                       description="comma-separated device ids")]


def parse_ids(ids: str | None, settings: ApiSettings) -> tuple[str, ...]:
    if not ids:
        return ()
    out = tuple(dict.fromkeys(i for i in ids.split(",") if i))
    for i in out:
        if not DEVICE_ID_RE.match(i):
            raise Problem(422, "invalid-parameter", f"ids: {i[:80]!r} is not a device id")
    if len(out) > settings.api_max_ids:
        raise limit_exceeded("ids", len(out), settings.api_max_ids,
                             "ask for fewer devices per call, or select them by city, ward, family or kind")
    return out


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
    except ValueError:
        raise Problem(422, "invalid-parameter", "bbox must be min_lon,min_lat,max_lon,max_lat, "
                      "e.g. 103.0,21.37,103.03,21.40") from None
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise Problem(422, "invalid-parameter", "bbox must be min_lon,min_lat,max_lon,max_lat with min ≤ max, "
                      "longitudes in [-180, 180] and latitudes in [-90, 90]")
    return x0, y0, x1, y1


async def device_filter(
    settings: Annotated[ApiSettings, Depends(get_settings)],
    city: City = None,
    ward: Ward = None,
    family: Family | None = None,
    kind: KindName | None = None,
    ids: IdsParam = None,
    parent: Annotated[str | None, Query(pattern=TEXT, description="cabinet id of lamps, or DMA of water devices")]
    = None,
) -> DeviceFilter:
    return DeviceFilter(city=city, ward=ward, family=family, kind=kind, ids=parse_ids(ids, settings), parent=parent)


Filter = Annotated[DeviceFilter, Depends(device_filter)]


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    if not DEVICE_ID_RE.match(value):
        raise Problem(422, "invalid-parameter", "cursor is not one this API issued: follow the `next` link as given")
    return value


def page_size(limit: int | None, settings: ApiSettings) -> int:
    if limit is None:
        return settings.api_default_page_size
    if limit > settings.api_max_page_size:
        raise limit_exceeded("limit", limit, settings.api_max_page_size,
                             f"use limit={settings.api_max_page_size} or less and follow the `next` links")
    return limit


def next_link(request: Request, last_id: str | None) -> str | None:
    if last_id is None:
        return None
    return str(request.url.include_query_params(cursor=encode_cursor(last_id)))


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(422, "invalid-parameter", f"tz: unknown time zone {tz[:60]!r}; use an IANA name such as "
                      "Asia/Ho_Chi_Minh or UTC") from None


def aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise Problem(422, "invalid-parameter", f"{name}: give an offset, e.g. 2026-03-14T18:00:00+07:00 "
                      "(times without one are ambiguous)")
    if not (1970 <= value.year <= 9000):
        raise Problem(422, "invalid-parameter", f"{name}: year {value.year} is out of range")
    return value
