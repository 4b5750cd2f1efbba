"""VN_AQI per Decision 1459/QĐ-TCMT (2019) of the Vietnam Environment Administration: breakpoint tables,
NowCast for particulates, hourly and daily indices. Pure functions, no I/O.

Concentrations are µg/m³. A sub-index is linear between breakpoints:
``AQI_x = (I[i+1] − I[i]) / (BP[i+1] − BP[i]) × (C_x − BP[i]) + I[i]`` for ``BP[i] ≤ C_x < BP[i+1]``, rounded to
an integer; a concentration above the last breakpoint reports 500, the top of the scale. An index (hourly or
daily) is the largest sub-index, and is only given when PM2.5 or PM10 has one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INDEX = (0, 50, 100, 150, 200, 300, 400, 500)
# Table 1 of the Decision: breakpoints BP_i per parameter (µg/m³). O3 8 h has none above index 300: beyond
# 400 µg/m³ the 1-hour O3 index is used.
BREAKPOINTS: dict[str, tuple[float, ...]] = {
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 120, 170, 210, 400),
    "co": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
    "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
}

# (upper bound of the index, level, Vietnamese name, colour) — Table 2 of the Decision.
BANDS: tuple[tuple[int, str, str, str], ...] = (
    (50, "good", "Tốt", "green"),
    (100, "moderate", "Trung bình", "yellow"),
    (150, "poor", "Kém", "orange"),
    (200, "bad", "Xấu", "red"),
    (300, "very_bad", "Rất xấu", "purple"),
    (500, "hazardous", "Nguy hại", "maroon"),
)


def sub_index(parameter: str, concentration: float | None) -> int | None:
    """The sub-index of one parameter, or None when there is no concentration (or no table for it)."""
    if concentration is None or math.isnan(concentration) or concentration < 0:
        return None
    bp = BREAKPOINTS[parameter]
    if concentration >= bp[-1]:
        return 500 if len(bp) == len(INDEX) else None  # O3 8 h beyond its table: the 1-hour index applies
    for i in range(len(bp) - 1):
        if bp[i] <= concentration < bp[i + 1]:
            value = (INDEX[i + 1] - INDEX[i]) / (bp[i + 1] - bp[i]) * (concentration - bp[i]) + INDEX[i]
            return math.floor(value + 0.5)  # round half up
    return None  # unreachable: the table starts at 0


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """NowCast of the last 12 hourly means, newest first (``hourly[0]`` is the current hour).

    ``w* = c_min / c_max``; ``w = max(w*, 1/2)``; ``NowCast = Σ wⁱ⁻¹·cᵢ / Σ wⁱ⁻¹`` over the hours present. Needs at
    least two of the three most recent hours.
    """
    values = list(hourly[:12])
    if sum(v is not None for v in values[:3]) < 2:
        return None
    present = [v for v in values if v is not None]
    c_max, c_min = max(present), min(present)
    w = 1.0 if c_max == 0 else max(c_min / c_max, 0.5)
    num = sum(w**i * v for i, v in enumerate(values) if v is not None)
    den = sum(w**i for i, v in enumerate(values) if v is not None)
    return num / den


@dataclass(frozen=True)
class Aqi:
    value: int
    dominant: str  # the parameter that gives the index
    level: str
    name_vi: str
    colour: str
    sub_indices: dict[str, int]


def band(value: int) -> tuple[str, str, str]:
    for top, level, name, colour in BANDS:
        if value <= top:
            return level, name, colour
    return BANDS[-1][1:]


def combine(subs: Mapping[str, int | None]) -> Aqi | None:
    """The index from sub-indices: their maximum, given only when PM2.5 or PM10 has one."""
    known = {k: v for k, v in subs.items() if v is not None}
    if not any(k.startswith(("pm25", "pm10")) for k in known):
        return None
    dominant = max(known, key=lambda k: known[k])
    value = known[dominant]
    level, name, colour = band(value)
    return Aqi(value, dominant, level, name, colour, known)


def hourly_aqi(hours: Mapping[str, Sequence[float | None]]) -> Aqi | None:
    """VN_AQI of the current hour. ``hours[p]`` are hourly means of parameter p (pm25, pm10, o3, co, so2, no2),
    newest first; PM uses the NowCast of 12 hours, gases the current hour's mean."""
    subs: dict[str, int | None] = {}
    for p in ("pm25", "pm10"):
        subs[p] = sub_index(p, nowcast(hours.get(p, ())))
    for p, table in (("o3", "o3_1h"), ("co", "co"), ("so2", "so2"), ("no2", "no2")):
        series = hours.get(p, ())
        subs[p] = sub_index(table, series[0] if series else None)
    return combine(subs)


# A 24-hour mean needs this many hourly means (75 % of the day), an 8-hour mean 6 of 8.
MIN_HOURS_24H = 18
MIN_HOURS_8H = 6


def mean(values: Sequence[float | None], minimum: int) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if len(present) >= minimum else None


def daily_aqi(hours: Mapping[str, Sequence[float | None]]) -> Aqi | None:
    """VN_AQI of a day from its 24 hourly means per parameter (any order for PM and gases; O3 in time order):
    PM by their 24-hour means, CO/SO2/NO2 by the day's highest hourly mean, O3 by the larger of the highest
    hourly mean's and the highest 8-hour running mean's sub-index."""
    subs: dict[str, int | None] = {}
    for p in ("pm25", "pm10"):
        subs[p] = sub_index(p, mean(hours.get(p, ()), MIN_HOURS_24H))
    for p in ("co", "so2", "no2"):
        present = [v for v in hours.get(p, ()) if v is not None]
        subs[p] = sub_index(p, max(present) if present else None)
    o3 = list(hours.get("o3", ()))
    o3_present = [v for v in o3 if v is not None]
    one = sub_index("o3_1h", max(o3_present) if o3_present else None)
    eights = [m for i in range(len(o3) - 7) if (m := mean(o3[i:i + 8], MIN_HOURS_8H)) is not None]
    eight = sub_index("o3_8h", max(eights)) if eights else None
    subs["o3"] = max((v for v in (one, eight) if v is not None), default=None)
    return combine(subs)
