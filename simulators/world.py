"""What all simulated devices share: the sun, the weather, the calendar, daily profiles and the scenario plan.

Everything here is a pure function of (seed, time): rain in an hour, dusk on a day, the festival calendar.
Device models keep only their own state (energy counters, battery) and their own random stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

from astral import Observer
from astral.sun import sun

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S, TZ, local_date
from simulators.fleet import city_data
from simulators.rng import stable_seed, unit
from simulators.scenario import Plan

LAT, LON = 21.386, 103.017

# Hourly water demand relative to the daily mean (sums to 24): night minimum, 6–8 h and 18–21 h peaks.
_WATER_RAW = (0.30, 0.25, 0.22, 0.22, 0.30, 0.70, 1.60, 2.10, 1.70, 1.10, 0.95, 1.10,
                 1.25, 1.00, 0.85, 0.85, 1.00, 1.30, 1.80, 1.95, 1.60, 1.10, 0.60, 0.40)
WATER_PROFILE: tuple[float, ...] = tuple(v * 24 / sum(_WATER_RAW) for v in _WATER_RAW)

# Road utilisation (demand / capacity) by hour, weekdays and weekends: 7–8 h and 17–19 h rush hours.
TRAFFIC_WEEKDAY = (0.04, 0.03, 0.02, 0.02, 0.05, 0.18, 0.50, 0.80, 0.70, 0.45, 0.40, 0.48,
                   0.50, 0.42, 0.40, 0.45, 0.62, 0.86, 0.80, 0.55, 0.45, 0.35, 0.18, 0.08)
TRAFFIC_WEEKEND = (0.06, 0.04, 0.03, 0.02, 0.04, 0.10, 0.25, 0.40, 0.48, 0.50, 0.50, 0.52,
                   0.50, 0.45, 0.45, 0.50, 0.55, 0.62, 0.68, 0.65, 0.58, 0.45, 0.25, 0.12)

# Monthly mean temperature (°C) in the Mường Thanh valley and relative rain likelihood (wet May–Sep).
MONTH_TEMP = (16.5, 18.5, 21.5, 24.5, 26.0, 26.5, 26.3, 26.0, 25.0, 23.0, 20.0, 17.0)
MONTH_RAIN = (0.04, 0.05, 0.07, 0.12, 0.25, 0.35, 0.40, 0.38, 0.25, 0.12, 0.06, 0.03)
# PM2.5 seasonal factor: the March–April slash-and-burn season is the worst of the year.
MONTH_PM = (1.4, 1.6, 2.4, 2.2, 1.1, 0.6, 0.55, 0.55, 0.65, 0.9, 1.1, 1.3)


class World:
    """Shared environment for one run (seed + plan)."""

    def __init__(self, seed: int, plan: Plan, fleet: Sequence[Device] = ()) -> None:
        self.seed = seed
        self.plan = plan
        self._rain_seed = stable_seed(seed, "rain") & 0xFFFFFFFF
        self._rain: dict[int, float] = {}
        self._sun: dict[int, tuple[int, int]] = {}
        self._observer = Observer(LAT, LON)
        self.festivals = city_data()["festivals"]
        self._floods = plan.of_type("flood")
        self.cabinet_offset = {d.device_id: int(d.metadata.get("switch_offset_s", 0))
                               for d in fleet if d.kind == "cabinet"}
        dimmable: dict[str, list[float]] = {}
        for d in fleet:
            if d.kind == "streetlight" and d.parent_id:
                pair = dimmable.setdefault(d.parent_id, [0.0, 0.0])
                pair[0] += float(d.metadata.get("rated_w", 0)) * (1 if d.metadata.get("dimmable") else 0)
                pair[1] += float(d.metadata.get("rated_w", 0))
        self.cabinet_dimmable = {k: (v[0] / v[1] if v[1] else 0.0) for k, v in dimmable.items()}

    # -- sun ------------------------------------------------------------------------------------------

    def sun_times(self, t: int) -> tuple[int, int]:
        """(dawn, dusk) in epoch seconds for the local day containing ``t``."""
        day = (t + OFFSET_S) // DAY
        cached = self._sun.get(day)
        if cached is None:
            s = sun(self._observer, date.fromordinal(719_163 + day), tzinfo=TZ)
            cached = self._sun[day] = (int(s["dawn"].timestamp()), int(s["dusk"].timestamp()))
        return cached

    def lamp_level(self, t: int, offset_s: int, dimmable: bool) -> float:
        """1.0 on, 0.5 dimmed (after midnight, dimmable lamps), 0.0 off; on from dusk to dawn."""
        dawn, dusk = self.sun_times(t)
        if t >= dusk + offset_s:
            return 1.0
        if t < dawn + offset_s:
            return 0.5 if dimmable else 1.0
        return 0.0

    # -- weather --------------------------------------------------------------------------------------

    def rain_rate(self, hour: int) -> float:
        """Rain in mm/h during epoch hour ``hour``: storms in 3-hour blocks, likelier in the wet season."""
        cached = self._rain.get(hour)
        if cached is not None:
            return cached
        month = local_date(hour * 3600).month
        rate = 0.0
        if unit(self._rain_seed, hour // 3) < MONTH_RAIN[month - 1]:
            rate = round(0.5 + 12.0 * unit(self._rain_seed ^ 0x5A5A, hour) ** 2, 2)
        t = hour * 3600
        for eff in self._floods:
            if eff.start <= t < eff.end:
                rate += float(eff.params.get("rain_mm_per_h", 35.0))
        self._rain[hour] = rate
        return rate

    def river_rise(self, t: int, lag_h: float) -> float:
        """Metres above base level at ``t``: recent rain through a unit hydrograph peaking after ~6 h."""
        rise = 0.0
        hour = t // 3600
        for k in range(72):
            r = self.rain_rate(hour - k)
            if r:
                x = max(k - lag_h, 0.0) / 6.0
                rise += r * x * math.exp(1.0 - x)
        return 0.018 * rise

    def temperature(self, t: int) -> float:
        d = local_date(t)
        h = ((t + OFFSET_S) % DAY) / 3600.0
        diurnal = 5.0 * math.cos((h - 14.0) / 24.0 * 2 * math.pi)
        wet = 2.0 if self.rain_rate(t // 3600) > 0 else 0.0
        return MONTH_TEMP[d.month - 1] + diurnal - wet

    # -- calendar -------------------------------------------------------------------------------------

    def festival_factor(self, t: int) -> float:
        d = local_date(t)
        for f in self.festivals:
            if d.month == f["month"] and f["first_day"] <= d.day <= f["last_day"]:
                return float(f["traffic_factor"])
        return 1.0

    def traffic_util(self, t: int) -> float:
        """City-wide road utilisation at ``t`` (before per-street capacity), incl. festival evenings."""
        d = local_date(t)
        h = int(((t + OFFSET_S) % DAY) // 3600)
        base = (TRAFFIC_WEEKEND if d.weekday() >= 5 else TRAFFIC_WEEKDAY)[h]
        fest = self.festival_factor(t)
        if fest > 1.0 and (h >= 17 or 8 <= h <= 11):
            base *= fest
        return base


def days_since_2024(t: int) -> float:
    """Age of the simulated installation, for believable starting values of cumulative counters."""
    return (t - int(datetime(2024, 1, 1, tzinfo=TZ).timestamp())) / DAY
