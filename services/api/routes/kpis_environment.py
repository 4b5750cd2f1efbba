"""Environment KPIs per station: VN_AQI (hourly and daily, Decision 1459/QĐ-TCMT), PM2.5 / PM10 24-hour means
against QCVN 05:2023/BTNMT, noise against QCVN 26:2010/BTNMT day and night limits, river level against the
gauge's alarm levels."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.api import aqi
from services.api.deps import Db, Settings, Viewer
from services.api.params import Filter, aware, zone
from services.api.problems import ERRORS
from services.api.queries import kpis as q

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], responses=ERRORS)

PM25_24H_LIMIT = 50.0  # QCVN 05:2023/BTNMT, µg/m³
PM10_24H_LIMIT = 100.0
# QCVN 26:2010/BTNMT, ordinary areas: 70 dB(A) by day (06–21 h), 55 dB(A) at night. (Its successor of 2025 keeps
# the same structure; the limits are constants here to be updated with it.)
NOISE_DAY_LIMIT, NOISE_NIGHT_LIMIT = 70.0, 55.0
DAY_FROM_HOUR, NIGHT_FROM_HOUR = 6, 21


class AqiOut(BaseModel):
    value: int
    dominant: str
    level: str
    name_vi: str
    colour: str
    sub_indices: dict[str, int]


class Station(BaseModel):
    device_id: str
    kind: str
    ward: str | None
    site: str | None
    aqi_hourly: AqiOut | None = None
    aqi_daily: AqiOut | None = Field(default=None, description="over the 24 hours ending at the last full hour")
    pm25_24h: float | None = None
    pm25_24h_exceeds: bool | None = None
    pm10_24h: float | None = None
    pm10_24h_exceeds: bool | None = None
    laeq_day_db: float | None = Field(default=None, description="energy mean of the day hours (06–21) in the 24 hours")
    laeq_night_db: float | None = None
    noise_day_exceeds: bool | None = None
    noise_night_exceeds: bool | None = None
    water_level_m: float | None = None
    alarm_levels_m: list[float] | None = Field(default=None, description="báo động I, II, III")
    alarm: int | None = Field(default=None, description="highest alarm level reached now (0: below I)")


class Environment(BaseModel):
    at: datetime
    limits: dict[str, float]
    stations: list[Station]


def _aqi(value: aqi.Aqi | None) -> AqiOut | None:
    return None if value is None else AqiOut(**value.__dict__)


def _energy_mean(levels: list[float]) -> float | None:
    import math

    return None if not levels else 10 * math.log10(sum(10 ** (v / 10) for v in levels) / len(levels))


def _alarm_levels(meta: dict[str, Any]) -> list[float] | None:
    levels = meta.get("alarm_levels_m")
    if isinstance(levels, list) and levels:
        return [float(v) for v in levels]
    warning = meta.get("warning_level_m")
    return [float(warning)] if isinstance(warning, int | float) else None


@router.get("/environment", summary="Air quality (VN_AQI, PM vs QCVN 05:2023), noise (QCVN 26) and river levels",
            response_model=Environment)
def environment(db: Db, settings: Settings, _: Viewer, flt: Filter,
                at: Annotated[datetime | None, Query(description="default now")] = None) -> Environment:
    tz = zone(settings.api_default_tz)
    when = aware("at", at) if at else datetime.now(UTC)
    hour_end = when.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    origin = hour_end.replace(hour=0)
    # 24 hours for the daily figures, 11 more for the NowCast's 12-hour window at the first of them.
    rows = q.environment_hours(db, flt, hour_end - timedelta(hours=35), hour_end, origin)
    hours: dict[str, dict[datetime, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        hours[r["device_id"]][r["hour"]] = r
    day_hours = [hour_end - timedelta(hours=i) for i in range(24, 0, -1)]  # oldest first
    stations: list[Station] = []
    for s in q.environment_stations(db, flt):
        h = hours.get(s["device_id"], {})
        out = Station(device_id=s["device_id"], kind=s["kind"], ward=s["ward"], site=s["site"])
        if s["kind"] == "air_quality":
            newest_first = [hour_end - timedelta(hours=i) for i in range(1, 13)]
            series = {p: [h[t][p] if t in h else None for t in newest_first] for p in ("pm25", "pm10", "o3", "co",
                                                                                      "so2", "no2")}
            out.aqi_hourly = _aqi(aqi.hourly_aqi(series))
            day = {p: [h[t][p] if t in h else None for t in day_hours] for p in ("pm25", "pm10", "o3", "co", "so2",
                                                                                  "no2")}
            out.aqi_daily = _aqi(aqi.daily_aqi(day))
            out.pm25_24h = aqi.mean(day["pm25"], aqi.MIN_HOURS_24H)
            out.pm10_24h = aqi.mean(day["pm10"], aqi.MIN_HOURS_24H)
            out.pm25_24h_exceeds = None if out.pm25_24h is None else out.pm25_24h > PM25_24H_LIMIT
            out.pm10_24h_exceeds = None if out.pm10_24h is None else out.pm10_24h > PM10_24H_LIMIT
        elif s["kind"] == "noise":
            levels = [(t.astimezone(tz).hour, h[t]["laeq_db"]) for t in day_hours
                      if t in h and h[t]["laeq_db"] is not None]
            out.laeq_day_db = _energy_mean([v for hr, v in levels if DAY_FROM_HOUR <= hr < NIGHT_FROM_HOUR])
            out.laeq_night_db = _energy_mean([v for hr, v in levels if not DAY_FROM_HOUR <= hr < NIGHT_FROM_HOUR])
            out.noise_day_exceeds = None if out.laeq_day_db is None else out.laeq_day_db > NOISE_DAY_LIMIT
            out.noise_night_exceeds = None if out.laeq_night_db is None else out.laeq_night_db > NOISE_NIGHT_LIMIT
        elif s["kind"] == "river_gauge":
            reading = s["last_reading"] or {}
            level = reading.get("water_level_m")
            out.water_level_m = None if level is None else float(level)
            out.alarm_levels_m = _alarm_levels(s["metadata"] or {})
            if out.water_level_m is not None and out.alarm_levels_m:
                out.alarm = sum(out.water_level_m >= a for a in out.alarm_levels_m)
        else:
            continue
        stations.append(out)
    return Environment(at=when.astimezone(tz), stations=stations, limits={
        "pm25_24h": PM25_24H_LIMIT, "pm10_24h": PM10_24H_LIMIT, "noise_day_db": NOISE_DAY_LIMIT,
        "noise_night_db": NOISE_NIGHT_LIMIT})
