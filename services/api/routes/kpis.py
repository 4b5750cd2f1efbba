"""Status and KPIs per city / ward / family: devices online, offline and silent; lighting, water, traffic and
environment figures against the province's targets and the national limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.api.deps import Db, Settings, Viewer
from services.api.params import Filter, aware, zone
from services.api.problems import ERRORS, limit_exceeded
from services.api.queries import kpis as q
from services.api.routes.city import city_definitions
from services.api.sun import dawn_dusk, is_night

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], responses=ERRORS)

SMART_LIGHTING_TARGET = 0.35  # ≥ 35 % of roads on smart / energy-saving / renewable lighting (DESIGN §2)
DEFAULT_CENTRE = (21.386, 103.017)  # Điện Biên Phủ, when a city has no geometry definition
MAX_ENERGY_DAYS = 92  # a quarter: the query reads raw cabinet readings


class StatusCount(BaseModel):
    group: str
    total: int
    online: int
    offline: int
    silent: int
    decommissioned: int


class Lighting(BaseModel):
    at: datetime
    night: bool
    dawn: datetime
    dusk: datetime
    lamps: int
    lit: int
    expected_lit: int = Field(description="at night every lamp not reported faulty; by day none")
    lit_ratio: float | None = Field(description="lit / expected_lit at night; null by day")
    unlit_by_day: int | None = Field(description="lamps lit while they should be off (by day)")
    faulty: int
    not_reporting: int
    smart: int
    smart_share: float | None
    smart_target: float = SMART_LIGHTING_TARGET
    smart_target_met: bool | None


class EnergyDay(BaseModel):
    day: str
    kwh: float
    cabinets: int


class LightingEnergy(BaseModel):
    tz: str
    days: list[EnergyDay]


def centre_of(city: str | None) -> tuple[float, float]:
    d = city_definitions().get(city or "") or next(iter(city_definitions().values()), None)
    return (float(d["centre"][0]), float(d["centre"][1])) if d else DEFAULT_CENTRE


@router.get("/status", summary="Devices online / offline / silent / decommissioned per group",
            response_model=list[StatusCount])
def status(db: Db, _: Viewer, flt: Filter,
           group_by: Annotated[Literal["city", "ward", "family", "kind", "site"], Query()] = "family",
           ) -> list[StatusCount]:
    return [StatusCount(**r) for r in q.status_counts(db, flt, group_by)]


@router.get("/lighting", summary="Lamps lit versus expected (dusk/dawn), faulty lamps, smart-lighting share",
            response_model=Lighting)
def lighting(db: Db, settings: Settings, _: Viewer, flt: Filter,
             at: Annotated[datetime | None, Query(description="moment for dusk/dawn (default now)")] = None,
             ) -> Lighting:
    when = aware("at", at) if at else datetime.now(UTC)
    lat, lon = centre_of(flt.city)
    tz = zone(settings.api_default_tz)
    night = is_night(when, lat, lon, tz)
    dawn, dusk = dawn_dusk(when, lat, lon, tz)
    r = q.lighting_now(db, flt, night)
    share = r["smart"] / r["lamps"] if r["lamps"] else None
    return Lighting(at=when.astimezone(tz), night=night, dawn=dawn, dusk=dusk, lamps=r["lamps"], lit=r["lit"],
                    expected_lit=r["expected_lit"],
                    lit_ratio=(r["lit"] / r["expected_lit"] if night and r["expected_lit"] else None),
                    unlit_by_day=None if night else r["lit"], faulty=r["faulty"], not_reporting=r["not_reporting"],
                    smart=r["smart"], smart_share=share,
                    smart_target_met=None if share is None else share >= SMART_LIGHTING_TARGET)


@router.get("/lighting/energy", summary="Lighting energy per local day (cabinet meters)", response_model=LightingEnergy)
def lighting_energy(db: Db, settings: Settings, _: Viewer, flt: Filter,
                    days: Annotated[int, Query(ge=1, description="local days ending today (or at `end`)")] = 7,
                    end: Annotated[datetime | None, Query(description="default now")] = None,
                    tz: Annotated[str | None, Query(max_length=64)] = None) -> LightingEnergy:
    if days > MAX_ENERGY_DAYS:
        raise limit_exceeded("days", days, MAX_ENERGY_DAYS, "ask for fewer days, or use /v1/series with "
                             "kind=cabinet&metric=energy_kwh&fn=max for longer ranges")
    tzinfo = zone(tz or settings.api_default_tz)
    stop = aware("end", end) if end else datetime.now(UTC)
    local_end = stop.astimezone(tzinfo).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = local_end - timedelta(days=days)
    rows = q.lighting_energy(db, flt, start, local_end, tzinfo.key)
    return LightingEnergy(tz=tzinfo.key, days=[EnergyDay(day=r["day"].isoformat(), kwh=float(r["kwh"] or 0),
                                                         cabinets=r["cabinets"]) for r in rows])


class Summary(BaseModel):
    city: str | None
    ward: str | None
    status: list[StatusCount]
    lighting: Lighting


@router.get("/summary", summary="One call for a ward or city panel: status per family and lighting now",
            response_model=Summary)
def summary(db: Db, settings: Settings, v: Viewer, flt: Filter) -> Summary:
    return Summary(city=flt.city, ward=flt.ward, status=status(db, v, flt, "family"),
                   lighting=lighting(db, settings, v, flt))
