"""Water and traffic KPIs: consumption and minimum night flow per metered area, network pressure; volume, speed
and congestion per intersection."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.api.deps import Db, Settings, Viewer
from services.api.params import Filter, aware, zone
from services.api.problems import ERRORS, limit_exceeded
from services.api.queries import kpis as q

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], responses=ERRORS)

# Minimum night flow window (local time): demand is lowest and what still flows is mostly leakage.
NIGHT_FROM, NIGHT_TO = time(1), time(5)
MAX_TRAFFIC_MINUTES = 24 * 60


class DmaWater(BaseModel):
    dma: str
    meters: int
    meters_reporting: int
    consumption_m3: float | None = Field(description="sum over reporting meters of the day's register advance")
    min_night_flow_lph: float | None = Field(description="lowest hourly mean inlet flow 01:00–05:00 local")
    min_pressure_bar: float | None
    avg_pressure_bar: float | None


class Water(BaseModel):
    day: date
    tz: str
    areas: list[DmaWater]


class Intersection(BaseModel):
    intersection: str
    counters: int
    vehicles: int
    vehicles_per_hour: float
    avg_speed_kmh: float | None
    avg_occupancy: float | None
    congested_share: float | None = Field(description="share of lane readings flagged congested")


class Traffic(BaseModel):
    start: datetime
    end: datetime
    intersections: list[Intersection]


@router.get("/water", summary="Water per metered area for a local day: consumption, minimum night flow, pressure",
            response_model=Water)
def water(db: Db, settings: Settings, _: Viewer, flt: Filter,
          day: Annotated[date | None, Query(description="local date (default: yesterday)")] = None) -> Water:
    tz = zone(settings.api_default_tz)
    the_day = day or (datetime.now(tz).date() - timedelta(days=1))
    if not date(1970, 1, 2) <= the_day <= date(9000, 1, 1):
        raise limit_exceeded("day", the_day.isoformat(), "9000-01-01", "ask for a real date")
    start = datetime.combine(the_day, time(0), tz)
    rows = q.water_by_dma(db, flt, start, start + timedelta(days=1), datetime.combine(the_day, NIGHT_FROM, tz),
                          datetime.combine(the_day, NIGHT_TO, tz))
    return Water(day=the_day, tz=tz.key, areas=[DmaWater(**r) for r in rows])


@router.get("/traffic", summary="Traffic per intersection over the last minutes: volume, speed, congestion",
            response_model=Traffic)
def traffic(db: Db, _: Viewer, flt: Filter,
            minutes: Annotated[int, Query(ge=1, description="window length")] = 60,
            end: Annotated[datetime | None, Query(description="window end (default now)")] = None) -> Traffic:
    if minutes > MAX_TRAFFIC_MINUTES:
        raise limit_exceeded("minutes", minutes, MAX_TRAFFIC_MINUTES, "use /v1/series for longer ranges")
    stop = aware("end", end) if end else datetime.now(UTC)
    start = stop - timedelta(minutes=minutes)
    rows = q.traffic_by_intersection(db, flt, start, stop)
    return Traffic(start=start, end=stop, intersections=[
        Intersection(**{**r, "vehicles": int(r["vehicles"]), "vehicles_per_hour": int(r["vehicles"]) * 60 / minutes})
        for r in rows])
