"""City geometry (streets, river, wards, sites) from the versioned city definitions, and the status page.

The status page at ``/`` is static HTML/JS served from ``services/api/static``; it reads only this API (no map
tiles, no CDN), so it works on a control-room machine with no internet.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from ioc.contract.topics import CITY_RE
from services.api.deps import Viewer
from services.api.problems import ERRORS, not_found
from services.api.queries.filters import SANDBOX_PREFIX

router = APIRouter(tags=["city"], responses=ERRORS)
STATIC = Path(__file__).resolve().parent.parent / "static"
GEOJSON = "application/geo+json"


class CityInfo(BaseModel):
    city: str
    name: str
    timezone: str
    centre: list[float]


@cache
def city_definitions() -> dict[str, dict[str, Any]]:
    """The city files shipped with the simulators (``simulators/data/<city>.json``), by slug."""
    out: dict[str, dict[str, Any]] = {}
    for entry in resources.files("simulators.data").iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[data["city"]] = data
    return out


def _definition(city: str) -> dict[str, Any] | None:
    defs = city_definitions()
    # A sandbox city (a replay) is drawn on the streets of the city it copies.
    return defs.get(city) or defs.get(city.removeprefix(SANDBOX_PREFIX))


def _line(points: list[list[float]]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [[p[1], p[0]] for p in points]}


def _point(at: list[float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [at[1], at[0]]}


@router.get("/v1/cities", summary="Cities with a geometry definition", response_model=list[CityInfo])
def cities(_: Viewer) -> list[CityInfo]:
    return [CityInfo(city=d["city"], name=d["name"], timezone=d["timezone"], centre=d["centre"])
            for d in city_definitions().values()]


@router.get("/v1/cities/{city}/map", summary="A city's streets, river, wards, intersections and stations (GeoJSON)",
            response_class=JSONResponse,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object", "required": ["type", "features"]}}}}})
def city_map(_: Viewer, city: Annotated[str, PathParam(pattern=CITY_RE.pattern)]) -> Response:
    d = _definition(city)
    if d is None:
        raise not_found(f"city {city!r} (no geometry definition)")
    features: list[dict[str, Any]] = []

    def add(layer: str, geometry: dict[str, Any], **props: Any) -> None:
        features.append({"type": "Feature", "geometry": geometry, "properties": {"layer": layer, **props}})

    for s in d.get("streets", []):
        add("street", _line(s["points"]), name=s["name"], ward=s.get("ward"), **{"class": s.get("class")})
    if d.get("river"):
        r = d["river"]
        add("river", _line(r["points"]), name=r["name"], warning_level_m=r.get("warning_level_m"))
    for w in d.get("wards", []):
        add("ward", _point(w["centre"]), name=w["name"])
    for x in d.get("intersections", []):
        add("intersection", _point(x["at"]), name=x["name"])
    for st in d.get("stations", []):
        add("station", _point(st["at"]), name=st["name"], ward=st.get("ward"))
    body = {"type": "FeatureCollection", "features": features,
            "city": city, "name": d["name"], "timezone": d["timezone"], "centre": d["centre"]}
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/", include_in_schema=False)
def status_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: Annotated[str, PathParam(pattern=r"^[a-z0-9_-]{1,40}\.(js|css)$")]) -> FileResponse:
    path = STATIC / name
    if not path.is_file():
        raise not_found(name)
    media = "text/javascript; charset=utf-8" if name.endswith(".js") else "text/css; charset=utf-8"
    return FileResponse(path, media_type=media)
