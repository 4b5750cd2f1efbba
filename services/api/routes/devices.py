"""Devices: list and filter (JSON pages or GeoJSON), one device, and admin registration / decommissioning."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from ioc.contract.topics import DEVICE_ID_RE
from ioc.registry import Device
from services.api.deps import Admin, Db, Settings, Viewer
from services.api.models import DeviceDetail, DeviceOut, DevicePage, State
from services.api.params import Filter, decode_cursor, next_link, page_size, parse_bbox
from services.api.problems import ERRORS, Problem, not_found
from services.api.queries import devices as q
from services.api.queries.filters import DeviceFilter

router = APIRouter(prefix="/v1", tags=["devices"], responses=ERRORS)

DeviceId = Annotated[str, Path(pattern=DEVICE_ID_RE.pattern)]
GEOJSON = "application/geo+json"


def _select(flt: DeviceFilter, status: str | None, state: str | None, bbox: str | None,
            silent: bool | None) -> DeviceFilter:
    if silent is not None:
        if state is not None and (state == "silent") != silent:
            raise Problem(422, "invalid-parameter", "silent and state contradict each other; give one of them")
        state = "silent" if silent else state
    return replace(flt, status=status, state=state, bbox=parse_bbox(bbox))


Status = Annotated[Literal["online", "offline", "unknown"] | None, Query(description="reported MQTT status")]
StateQ = Annotated[State | None, Query(description="derived state")]
Bbox = Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat", examples=["103.0,21.37,103.03,21.4"],
                                   pattern=r"^[0-9eE.,+-]{7,100}$")]
Silent = Annotated[bool | None, Query(description="true: only devices quiet for over 2 report intervals")]
Limit = Annotated[int | None, Query(ge=1, description="page size (default 100, at most IOC_API_MAX_PAGE_SIZE)")]
Cursor = Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="from the previous page's `next` link")]


@router.get("/devices", summary="List and filter devices (cursor-paged)", response_model=DevicePage)
def list_devices(request: Request, db: Db, settings: Settings, _: Viewer, flt: Filter, status: Status = None,
                 state: StateQ = None, bbox: Bbox = None, silent: Silent = None, limit: Limit = None,
                 cursor: Cursor = None) -> DevicePage:
    size = page_size(limit, settings)
    rows = q.page(db, _select(flt, status, state, bbox, silent), decode_cursor(cursor), size)
    more = len(rows) > size
    rows = rows[:size]
    return DevicePage(items=[DeviceOut.model_validate(r) for r in rows],
                      next=next_link(request, rows[-1]["device_id"] if more else None))


def _feature(row: dict[str, Any]) -> dict[str, Any]:
    props = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k not in ("lat", "lon")}
    geometry = None if row["lat"] is None or row["lon"] is None else {
        "type": "Point", "coordinates": [row["lon"], row["lat"]]}
    return {"type": "Feature", "id": row["device_id"], "geometry": geometry, "properties": props}


@router.get("/devices.geojson", summary="Devices as a GeoJSON FeatureCollection (cursor-paged)",
            response_class=JSONResponse,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object", "required": ["type", "features"],
                                                              "properties": {"type": {"const": "FeatureCollection"},
                                                                             "features": {"type": "array"}}}}}}})
def devices_geojson(request: Request, db: Db, settings: Settings, _: Viewer, flt: Filter, status: Status = None,
                    state: StateQ = None, bbox: Bbox = None, silent: Silent = None, limit: Limit = None,
                    cursor: Cursor = None) -> Response:
    size = page_size(limit, settings)
    rows = q.page(db, _select(flt, status, state, bbox, silent), decode_cursor(cursor), size, with_reading=True)
    more = len(rows) > size
    rows = rows[:size]
    nxt = next_link(request, rows[-1]["device_id"] if more else None)
    body: dict[str, Any] = {"type": "FeatureCollection", "features": [_feature(r) for r in rows]}
    if nxt:
        body["links"] = [{"rel": "next", "href": nxt, "type": GEOJSON}]
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/devices/{device_id}", summary="One device: metadata, state, newest reading", response_model=DeviceDetail)
def get_device(db: Db, _: Viewer, device_id: DeviceId) -> DeviceDetail:
    row = q.one(db, device_id)
    if row is None:
        raise not_found(f"device {device_id!r}")
    return DeviceDetail.model_validate(row)


@router.post("/devices", summary="Register a device (admin)", status_code=201, response_model=DeviceDetail,
             responses={409: {"description": "the id is taken", "content": ERRORS[404]["content"]}})
def create_device(db: Db, _: Admin, device: Annotated[Device, Body()]) -> DeviceDetail:
    if not q.insert(db, device):
        raise Problem(409, "conflict", f"device {device.device_id!r} exists; PUT /v1/devices/{device.device_id} "
                      "updates it")
    row = q.one(db, device.device_id)
    assert row is not None
    return DeviceDetail.model_validate(row)


@router.put("/devices/{device_id}", summary="Register or update a device (admin; as `ioc devices import`)",
            response_model=DeviceDetail)
def put_device(db: Db, _: Admin, device_id: DeviceId, device: Annotated[Device, Body()]) -> DeviceDetail:
    if device.device_id != device_id:
        raise Problem(422, "invalid-parameter", f"the body's device_id {device.device_id!r} differs from the "
                      f"path's {device_id!r}")
    q.update(db, device)
    row = q.one(db, device_id)
    assert row is not None
    return DeviceDetail.model_validate(row)


@router.post("/devices/{device_id}/decommission", summary="Decommission a device (admin): history stays, "
             "new messages are rejected", response_model=DeviceDetail)
def decommission_device(db: Db, _: Admin, device_id: DeviceId) -> DeviceDetail:
    if not q.decommission(db, device_id):
        raise not_found(f"device {device_id!r}")
    row = q.one(db, device_id)
    assert row is not None
    return DeviceDetail.model_validate(row)
