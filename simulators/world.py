"""What all simulated devices share: the sun, the weather, the calendar, daily profiles and the scenario plan.

Everything here is a pure function of (seed, time): rain in an hour, dusk on a day, the holiday calendar, the
phase voltage of a cabinet, the cumulative burning hours of a lamp since the installation epoch. Device models
keep only their own random stream and small hysteresis state, so a run started at any time continues the
counters of every earlier run (back-fill, then live, never goes backwards).

Model parameters come from the city file (``simulators/data/<city>.json``, section ``models``), each with its
source; the tuned values and the figures they reproduce are in ``simulators/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from astral import Observer
from astral.sun import sun

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S, TZ, local_date
from simulators.fleet import city_data
from simulators.rng import mix, stable_seed, unit
from simulators.scenario import Plan

# Cumulative counters (energy, water) are integrated from this installation date, so every run agrees.
EPOCH = int(datetime(2024, 1, 1, tzinfo=TZ).timestamp())
EPOCH_DAY = (EPOCH + OFFSET_S) // DAY

# Hourly water demand relative to the daily mean (sums to 24): night minimum, 6–8 h and 18–21 h peaks.
_WATER_RAW = (0.30, 0.25, 0.22, 0.22, 0.30, 0.70, 1.60, 2.10, 1.70, 1.10, 0.95, 1.10,
              1.25, 1.00, 0.85, 0.85, 1.00, 1.30, 1.80, 1.95, 1.60, 1.10, 0.60, 0.40)
WATER_PROFILE: tuple[float, ...] = tuple(v * 24 / sum(_WATER_RAW) for v in _WATER_RAW)
# Days off: people get up later, the morning peak moves to 8–10 h (same daily total).
_HOLIDAY_RAW = (0.35, 0.28, 0.24, 0.22, 0.24, 0.40, 0.90, 1.40, 1.90, 1.80, 1.40, 1.25,
                1.30, 1.00, 0.85, 0.85, 1.00, 1.25, 1.70, 1.90, 1.60, 1.20, 0.75, 0.50)
WATER_PROFILE_HOLIDAY: tuple[float, ...] = tuple(v * 24 / sum(_HOLIDAY_RAW) for v in _HOLIDAY_RAW)

# Road utilisation (demand / capacity) by hour, weekdays and weekends: 7–8 h and 17–19 h rush hours.
TRAFFIC_WEEKDAY = (0.04, 0.03, 0.02, 0.02, 0.05, 0.18, 0.50, 0.80, 0.70, 0.45, 0.40, 0.48,
                   0.50, 0.42, 0.40, 0.45, 0.62, 0.86, 0.80, 0.55, 0.45, 0.35, 0.18, 0.08)
TRAFFIC_WEEKEND = (0.06, 0.04, 0.03, 0.02, 0.04, 0.10, 0.25, 0.40, 0.48, 0.50, 0.50, 0.52,
                   0.50, 0.45, 0.45, 0.50, 0.55, 0.62, 0.68, 0.65, 0.58, 0.45, 0.25, 0.12)
# Mean of the weekday profile: volumes are given per day, utilisation is relative to this mean.
TRAFFIC_MEAN = sum(TRAFFIC_WEEKDAY) / 24

# Monthly mean temperature (°C) in the Mường Thanh valley.
MONTH_TEMP = (16.5, 18.5, 21.5, 24.5, 26.0, 26.5, 26.3, 26.0, 25.0, 23.0, 20.0, 17.0)


def models() -> dict[str, Any]:
    """The ``models`` section of the city file (parameters with their sources)."""
    m: dict[str, Any] = city_data()["models"]
    return m


def _days_in_month(d: date) -> int:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return (nxt - date(d.year, d.month, 1)).days


class Calendar:
    """Public holidays, Tết and festival dates from the city file (``calendar``, ``festivals``)."""

    def __init__(self) -> None:
        data = city_data()
        cal = data["calendar"]
        self.fixed = set(cal["fixed_holidays"])
        self.dated: set[date] = {date.fromisoformat(s) for s in cal["hung_kings"]}
        self.tet: set[date] = set()
        self.pre_tet: set[date] = set()
        for s in cal["tet"]:
            first = date.fromisoformat(s).toordinal()
            self.tet.update(date.fromordinal(first + k)
                            for k in range(-int(cal["tet_days_before"]), int(cal["tet_days_after"]) + 1))
            self.pre_tet.update(date.fromordinal(first - k) for k in range(3, 8))
        self.holiday_factor = float(cal["holiday_traffic_factor"])
        self.tet_factor = float(cal["tet_traffic_factor"])
        self.pre_tet_factor = float(cal["pre_tet_evening_factor"])
        self.festivals = data["festivals"]
        self._cache: dict[date, tuple[str, float]] = {}

    def day_type(self, d: date) -> str:
        """``tet``, ``holiday``, ``weekend`` or ``workday``."""
        return self._of(d)[0]

    def festival_factor(self, d: date) -> float:
        return self._of(d)[1]

    def is_day_off(self, d: date) -> bool:
        return self.day_type(d) != "workday"

    def _of(self, d: date) -> tuple[str, float]:
        cached = self._cache.get(d)
        if cached is not None:
            return cached
        if d in self.tet:
            kind = "tet"
        elif d in self.dated or f"{d.month:02d}-{d.day:02d}" in self.fixed:
            kind = "holiday"
        elif d.weekday() >= 5:
            kind = "weekend"
        else:
            kind = "workday"
        factor = 1.0
        for f in self.festivals:
            dates = f.get("dates", {}).get(str(d.year))
            if dates:
                inside = date.fromisoformat(dates[0]) <= d <= date.fromisoformat(dates[1])
            else:
                w = f["default_window"]
                inside = d.month == w["month"] and w["first_day"] <= d.day <= w["last_day"]
            if inside:
                factor = float(f["traffic_factor"])
        self._cache[d] = (kind, factor)
        return kind, factor


class World:
    """Shared environment for one run (seed + plan)."""

    def __init__(self, seed: int, plan: Plan, fleet: Sequence[Device] = ()) -> None:
        m = models()
        self.seed = seed
        self.plan = plan
        self.calendar = Calendar()
        self._rain_seed = stable_seed(seed, "rain") & 0xFFFFFFFF
        self._air_seed = stable_seed(seed, "air") & 0xFFFFFFFF
        self._power_seed = stable_seed(seed, "power") & 0xFFFFFFFF
        self._rain: dict[int, float] = {}
        self._rain_day: dict[int, tuple[int, tuple[float, ...]]] = {}
        self._daily_total: dict[int, float] = {}
        self._sun: dict[int, tuple[int, int]] = {}
        lat, lon = city_data()["centre"]
        self._observer = Observer(lat, lon)  # dusk and dawn at the city centre
        self._floods = plan.of_type("flood")
        self.rain_p = m["rain"]
        self.river_p = m["river"]
        self.air_p = m["air"]
        self.power_p = m["power"]
        self._uh = self._unit_hydrograph()
        self.cabinet_offset = {d.device_id: int(d.metadata.get("switch_offset_s", 0))
                               for d in fleet if d.kind == "cabinet"}
        # Cabinet numbers key the phase voltages; five consecutive cabinets share a feeder (and its sags).
        self.cabinet_index = {cab: n for n, cab in enumerate(self.cabinet_offset)}
        dimmable: dict[str, list[float]] = {}
        for d in fleet:
            if d.kind == "streetlight" and d.parent_id and d.metadata.get("lamp_type") != "solar":
                pair = dimmable.setdefault(d.parent_id, [0.0, 0.0])
                pair[0] += float(d.metadata.get("rated_w", 0)) * (1 if d.metadata.get("dimmable") else 0)
                pair[1] += float(d.metadata.get("rated_w", 0))
        self.cabinet_dimmable = {k: (v[0] / v[1] if v[1] else 0.0) for k, v in dimmable.items()}
        # Household demand per DMA (m³/day), for the inlet's flow = demand + losses.
        self.dma_demand: dict[str, float] = {}
        for d in fleet:
            if d.kind == "meter":
                dma = str(d.metadata.get("dma"))
                self.dma_demand[dma] = self.dma_demand.get(dma, 0.0) + float(d.metadata.get("daily_m3", 0.5))
        # Cumulative lamp-on hours per local day since the epoch (full and dimmed-after-midnight lamps).
        self._days: dict[int, tuple[int, int, int, float, float, float]] = {}
        self._traffic_day: dict[int, tuple[float, ...]] = {}
        self._burn_full: list[float] = [0.0]
        self._burn_dim: list[float] = [0.0]
        self.volts: dict[int, float] = {}  # phase voltages by volt_key, shared by a cabinet's lamps

    # -- sun ------------------------------------------------------------------------------------------

    def sun_times(self, t: int) -> tuple[int, int]:
        """(dawn, dusk) in epoch seconds for the local day containing ``t``."""
        return self._sun_of_day((t + OFFSET_S) // DAY)

    def _sun_of_day(self, day: int) -> tuple[int, int]:
        cached = self._sun.get(day)
        if cached is None:
            s = sun(self._observer, date.fromordinal(719_163 + day), tzinfo=TZ)
            cached = self._sun[day] = (int(s["dawn"].timestamp()), int(s["dusk"].timestamp()))
        return cached

    def _day_info(self, day: int) -> tuple[int, int, int, float, float, float]:
        """(start, dawn, dusk, dim factor before dawn, full-lamp seconds before the day, dimmable-lamp seconds
        before the day) of local day ``day``; the cumulative sums run from the epoch."""
        info = self._days.get(day)
        if info is None:
            n = day - EPOCH_DAY
            full, dim = self._burn_full, self._burn_dim
            while len(full) <= n:  # extend the cumulative table (once per world, ~1 000 days)
                d = EPOCH_DAY + len(full) - 1
                start, dawn, dusk, k = self._day_shape(d)
                night = start + DAY - dusk
                full.append(full[-1] + (dawn - start) + night)
                dim.append(dim[-1] + k * (dawn - start) + night)
            start, dawn, dusk, k = self._day_shape(day)
            info = self._days[day] = (start, dawn, dusk, k, full[n] if n >= 0 else 0.0, dim[n] if n >= 0 else 0.0)
        return info

    def _day_shape(self, day: int) -> tuple[int, int, int, float]:
        dawn, dusk = self._sun_of_day(day)
        # Dimmable lamps go to half power after midnight, except in the night after a day off (festive streets).
        k = 1.0 if self.calendar.is_day_off(date.fromordinal(719_163 + day - 1)) else 0.5
        return day * DAY - OFFSET_S, dawn, dusk, k

    def lamp_level(self, t: int, offset_s: int, dimmable: bool) -> float:
        """1.0 on, 0.5 dimmed (after midnight, dimmable lamps, not after a day off), 0.0 off; dusk to dawn."""
        t -= offset_s
        _, dawn, dusk, k, _, _ = self._day_info((t + OFFSET_S) // DAY)
        if t >= dusk:
            return 1.0
        if t < dawn:
            return k if dimmable else 1.0
        return 0.0

    def burn_hours(self, t: int, offset_s: int, dimmable: bool) -> float:
        """Equivalent full-power burning hours of a lamp from the epoch to ``t`` (pure function of time).

        A cabinet's switching offset shifts its lamps' whole timeline, so the offset-free integral at
        ``t - offset_s`` is exact and stays monotonic across midnight.
        """
        t -= offset_s
        if t < EPOCH:
            return 0.0
        start, dawn, dusk, k, full, dim = self._day_info((t + OFFSET_S) // DAY)
        morning = (t if t < dawn else dawn) - start
        today = dim + k * morning if dimmable else full + morning
        if t > dusk:
            today += t - dusk
        return today / 3600.0

    # -- weather --------------------------------------------------------------------------------------

    def _day_event(self, day: int) -> tuple[int, tuple[float, ...]]:
        """The rain event of local day ``day``: (first epoch hour, mm per hour), pure in (seed, day)."""
        cached = self._rain_day.get(day)
        if cached is not None:
            return cached
        p = self.rain_p
        d = date.fromordinal(719_163 + day)
        m = d.month - 1
        s = self._rain_seed
        # Wet spells: the daily probability varies by blocks of a few days (rain clusters in spells).
        block = unit(s ^ 0x1111, day // int(p["spell_block_days"]))
        prob = p["rain_days"][m] / _days_in_month(d) * (1.0 - p["spell_spread"] / 2 + p["spell_spread"] * block)
        event: tuple[int, tuple[float, ...]] = (0, ())
        if unit(s, day) < min(prob, 0.97):
            mean = p["monthly_mm"][m] / p["rain_days"][m]
            k = float(p["amount_tail_exponent"])
            u = max(unit(s ^ 0x2222, day), 1e-9)
            amount = max(0.2, mean * (-math.log(u)) ** k / math.gamma(1.0 + k))
            convective = d.month in p["convective_months"]
            lo, hi = p["convective_hours"] if convective else p["stratiform_hours"]
            hours = lo + int((hi - lo + 1) * unit(s ^ 0x3333, day) ** (1.5 if convective else 1.0))
            hours = max(1, min(hours, 23))
            # Convection in the afternoon and evening (sometimes past midnight); fronts at any hour.
            start_h = (13 + int(12 * unit(s ^ 0x4444, day))) % 24 if convective else int(24 * unit(s ^ 0x4444, day))
            # Front-loaded: the heaviest hour first, as in convective cells.
            weights = [(hours - i) ** 1.5 for i in range(hours)]
            total = sum(weights)
            first = (day * DAY - OFFSET_S) // 3600 + start_h
            event = (first, tuple(amount * w / total for w in weights))
        self._rain_day[day] = event
        return event

    def rain_rate(self, hour: int) -> float:
        """Rain in mm/h during epoch hour ``hour``: daily events from the climate normals, plus flood scenarios."""
        cached = self._rain.get(hour)
        if cached is not None:
            return cached
        day = (hour * 3600 + OFFSET_S) // DAY
        rate = 0.0
        for d in (day, day - 1):
            first, amounts = self._day_event(d)
            if first <= hour < first + len(amounts):
                rate += amounts[hour - first]
        rate = round(rate, 2)
        t = hour * 3600
        for eff in self._floods:
            if eff.start <= t < eff.end:
                rate += float(eff.params.get("rain_mm_per_h", 35.0))
        self._rain[hour] = rate
        return rate

    def daily_rain(self, day: int) -> float:
        """Rain of local day ``day`` in mm (flood scenarios included)."""
        cached = self._daily_total.get(day)
        if cached is None:
            first = (day * DAY - OFFSET_S) // 3600
            cached = self._daily_total[day] = sum(self.rain_rate(first + h) for h in range(24))
        return cached

    def _unit_hydrograph(self) -> tuple[float, ...]:
        peak = float(self.river_p["peak_h"])
        raw = [(k / peak) * math.exp(1.0 - k / peak) for k in range(int(self.river_p["memory_h"]))]
        total = sum(raw)
        return tuple(v / total for v in raw)

    def river_flow(self, t: int, lag_h: float) -> float:
        """Storm runoff at ``t`` (mm/h equivalent): recent rain through a unit hydrograph peaking after ~6 h."""
        hour = t // 3600 - int(lag_h)
        q = 0.0
        for k, w in enumerate(self._uh):
            r = self.rain_rate(hour - k)
            if r:
                q += r * w
        return q

    def river_stage(self, t: int, lag_h: float) -> float:
        """Metres above the low-water level: baseflow from weeks of rain plus the storm response."""
        p = self.river_p
        day = (t + OFFSET_S) // DAY
        decay = float(p["baseflow_decay_days"])
        wet = sum(self.daily_rain(day - k) * math.exp(-k / decay) for k in range(1, 40))
        base = float(p["baseflow_m_per_mm"]) * wet
        storm = float(p["stage_coeff"]) * math.pow(self.river_flow(t, lag_h), float(p["stage_exponent"]))
        return base + storm

    def temperature(self, t: int) -> float:
        d = local_date(t)
        h = ((t + OFFSET_S) % DAY) / 3600.0
        diurnal = 5.0 * math.cos((h - 14.0) / 24.0 * 2 * math.pi)
        wet = 2.0 if self.rain_rate(t // 3600) > 0 else 0.0
        return MONTH_TEMP[d.month - 1] + diurnal - wet

    # -- air ------------------------------------------------------------------------------------------

    def pm_day_factor(self, day: int) -> float:
        """City-wide PM2.5 multiplier of a local day: season × log-normal day-to-day × burning episodes."""
        p = self.air_p
        d = date.fromordinal(719_163 + day)
        s = self._air_seed
        # Smooth day-to-day weather (mixing height, wind): a 3-day moving mean of normal deviates.
        z = sum(_normal(s, day + k) for k in (-1, 0, 1)) / math.sqrt(3)
        factor: float = p["month_factor"][d.month - 1] * math.exp(p["day_sigma"] * z - p["day_sigma"] ** 2 / 2)
        lo, hi = p["episode_days"]
        for back in range(int(hi)):
            start = day - back
            sd = date.fromordinal(719_163 + start)
            if sd.month not in p["episode_months"] or unit(s ^ 0x7777, start) >= p["episode_start_probability"]:
                continue
            length = lo + int((hi - lo + 1) * unit(s ^ 0x8888, start))
            if back < length:
                peak = p["episode_peak_factor"][0] + (p["episode_peak_factor"][1] - p["episode_peak_factor"][0]) \
                    * unit(s ^ 0x9999, start)
                shape = math.sin(math.pi * (back + 0.5) / length)  # builds up, peaks mid-episode, clears
                factor *= 1.0 + (peak - 1.0) * shape
                break
        return factor

    # -- power ----------------------------------------------------------------------------------------

    def phase_voltage(self, cabinet: int, phase: int, t: int) -> float:
        """Supply voltage of a cabinet phase at ``t`` (15-min steps): feeder offset, evening drop, rare sags."""
        slot = t // 900
        key = self.volt_key(cabinet, phase, slot)
        v = self.volts.get(key)
        if v is not None:
            return v
        if len(self.volts) > 400_000:
            self.volts.clear()
        p = self.power_p
        s = self._power_seed
        h = ((slot * 900 + OFFSET_S) % DAY) / 3600.0  # of the slot, not of ``t``: the value is cached per slot
        evening = p["evening_drop"] * math.exp(-((h - 19.5) / 2.0) ** 2)  # the 18–21 h load peak
        night = 0.01 * math.exp(-((h - 3.0) / 2.5) ** 2)  # light load, a little high
        offset = p["cabinet_spread"] * (2.0 * unit(s, cabinet) - 1.0)
        noise = p["noise"] * (2.0 * unit(s ^ 0xABCD, mix(cabinet * 4 + phase, slot)) - 1.0)
        rel: float = 1.0 + p["mean_offset"] + offset + night - evening + noise
        feeder_slot = mix(cabinet // 5, slot)  # sags hit the cabinets of one feeder together
        if unit(s ^ 0x5A61, feeder_slot) < p["sag_probability_per_15min"]:
            lo, hi = p["sag_depth"]
            rel -= lo + (hi - lo) * unit(s ^ 0x5A62, feeder_slot)
        v = self.volts[key] = float(p["nominal_v"]) * rel
        return v

    @staticmethod
    def volt_key(cabinet: int, phase: int, slot: int) -> int:
        """The cache key of a phase voltage: an int (cheaper than a tuple, and not tracked by the GC)."""
        return ((cabinet * 4 + phase) << 40) + slot

    # -- calendar -------------------------------------------------------------------------------------

    def festival_factor(self, t: int) -> float:
        return self.calendar.festival_factor(local_date(t))

    def traffic_util(self, t: int) -> float:
        """City-wide traffic relative to a weekday's mean at ``t``: rush hours, days off, Tết, festivals."""
        local = t + OFFSET_S
        hours = self._traffic_day.get(local // DAY)
        if hours is None:
            hours = self._traffic_day[local // DAY] = self._traffic_hours(date.fromordinal(719_163 + local // DAY))
        return hours[(local % DAY) // 3600]

    def _traffic_hours(self, d: date) -> tuple[float, ...]:
        """The 24 hourly utilisations of a local day (computed once per day)."""
        kind, fest = self.calendar._of(d)
        out = []
        for h in range(24):
            base = (TRAFFIC_WEEKDAY if kind == "workday" else TRAFFIC_WEEKEND)[h]
            if kind == "holiday":
                base *= self.calendar.holiday_factor
            elif kind == "tet":
                base *= self.calendar.tet_factor
            elif d in self.calendar.pre_tet and h >= 16:
                base *= self.calendar.pre_tet_factor
            if fest > 1.0 and (h >= 17 or 8 <= h <= 11):
                base *= fest
            out.append(base)
        return tuple(out)

    def water_profile(self, t: int) -> tuple[float, ...]:
        return WATER_PROFILE_HOLIDAY if self.calendar.is_day_off(local_date(t)) else WATER_PROFILE


def _normal(seed: int, n: int) -> float:
    """A deterministic standard normal deviate (Box–Muller on two hashed uniforms)."""
    u1 = max(unit(seed, 2 * n), 1e-12)
    u2 = unit(seed, 2 * n + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


def cumulative_profile(profile: Sequence[float]) -> list[float]:
    """Cumulative share of the day's total at each hour boundary (25 values, 0 … 1)."""
    out = [0.0]
    for v in profile:
        out.append(out[-1] + v / 24.0)
    return out


