"""Household meters and DMA network points: morning/evening peaks, night zero-flow hours, losses, bursts.

Cumulative volumes are closed forms of the device's history since :data:`simulators.world.EPOCH`:

- a meter's day total is ``daily × (1 + g(d+1) − g(d))`` with ``g`` a hashed per-day deviate, so the sum
  over any number of days telescopes (``daily × (days + g(d) − g(0))``) and needs no integration; within a
  day the volume follows the hours the household actually used water (hashed per hour, likelier at peaks),
  which leaves zero-flow hours at night;
- a DMA inlet delivers the households' demand plus losses at ``models.water.loss_share`` of the input.

Scenario flows (a burst) show in the flow readings but are not added to the counters, so a later run
without the scenario continues them without going backwards.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S
from simulators.devices.base import EVENT, Body, DeviceSim
from simulators.rng import mix, stable_seed, unit
from simulators.world import EPOCH, EPOCH_DAY, World, cumulative_profile, models

LOW_BATTERY = 0.15
# Battery drain per day (a 10-year LoRaWAN meter battery).
BATTERY_PER_DAY = 0.00025
# Average household consumption (m³/day) when a point's DMA demand is estimated from its household count.
MEAN_DAILY_M3 = 0.55
LEAK_QUARTER_S = 91 * DAY


def _hour(t: int) -> int:
    return int(((t + OFFSET_S) % DAY) // 3600)


@functools.cache
def _use_probability(profile: tuple[float, ...], scale: float) -> tuple[tuple[float, float], ...]:
    """(profile, probability that a household uses water in the hour): 1 − exp(−scale × profile), so always
    at the peaks and rarely at night (zero-flow hours, which continuous-flow leak rules rely on)."""
    return tuple((v, 1.0 - math.exp(-scale * v)) for v in profile)


class Meter(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        p = models()["water"]
        rng = self.rng
        self.daily = float(md.get("daily_m3", 0.5))
        self.start_m3 = float(md.get("start_m3", 100.0))
        self.battery0 = 1.0 - 0.5 * rng.random()
        self._key = stable_seed(world.seed, "meter", device.device_id) & 0xFFFFFFFF
        self._var = float(p["day_variation"])
        self._use_scale = float(p["use_probability_scale"])
        self._day = -1
        self._cum: list[float] = []
        self._day_total = 0.0
        self._day_start = 0.0
        # Leaks behind the meter: at most one per quarter, fixed after some days (a pure function of time).
        self.leaks: list[tuple[int, int, float]] = []
        q_end = (start - EPOCH) // LEAK_QUARTER_S + 8  # two years past the start
        lo_l, hi_l = p["leak_l_per_h"]
        lo_d, hi_d = p["leak_days"]
        for q in range(q_end + 1):
            if unit(self._key ^ 0x1EAC, q) < p["leak_share_per_quarter"]:
                a = EPOCH + q * LEAK_QUARTER_S + int(LEAK_QUARTER_S * unit(self._key ^ 0x1EAD, q))
                b = a + int(DAY * (lo_d + (hi_d - lo_d) * unit(self._key ^ 0x1EAE, q)))
                self.leaks.append((a, b, lo_l + (hi_l - lo_l) * unit(self._key ^ 0x1EAF, q)))
        self.alarms_sent: set[str] = set()

    def _g(self, day: int) -> float:
        return self._var * (unit(self._key, day) - 0.5)

    def _load_day(self, day: int, t: int) -> None:
        profile = self.world.water_profile(t)
        x = mix(self._key ^ 0x0F10, day)
        weights = []
        for v, p in _use_probability(profile, self._use_scale):
            x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF  # 64-bit LCG, high bits
            weights.append(v if (x >> 11) * 1.1102230246251565e-16 < p else 0.0)
        total = sum(weights)
        self._cum = cumulative_profile([w * 24.0 / total for w in weights] if total else [1.0] * 24)
        self._day = day
        self._day_total = self.daily * (1.0 + self._g(day + 1) - self._g(day))
        self._day_start = self.start_m3 + self.daily * ((day - EPOCH_DAY) + self._g(day) - self._g(EPOCH_DAY))

    def volume_at(self, t: int) -> tuple[float, float]:
        """(m³ on the register at ``t``, household flow in L/h during the hour of ``t``)."""
        day = (t + OFFSET_S) // DAY
        if day != self._day:
            self._load_day(day, t)
        sec = (t + OFFSET_S) % DAY
        h = sec // 3600
        share = self._cum[h + 1] - self._cum[h]
        frac = self._cum[h] + share * (sec - h * 3600) / 3600.0
        volume = self._day_start + self._day_total * frac
        leak_flow = 0.0
        for a, b, lph in self.leaks:  # usually none
            if a < t:
                volume += lph * (min(t, b) - a) / 3_600_000.0
                if t < b:
                    leak_flow += lph
        return volume, self._day_total * share * 1000.0 + leak_flow

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        volume, flow = self.volume_at(t)
        if flow > 0:
            flow *= 0.9 + 0.2 * self.rng.random()  # the instantaneous rate around the hour's mean
        alarms: list[str] = []
        if self.leaks and any(a <= t < b for a, b, _ in self.leaks):
            alarms.append("leak")
        battery = max(0.0, self.battery0 - BATTERY_PER_DAY * (t - EPOCH) / DAY)
        if battery < LOW_BATTERY:
            alarms.append("lowBattery")
        for alarm in alarms:
            if alarm not in self.alarms_sent:
                self.alarms_sent.add(alarm)
                extra.append((EVENT, self.event(t, alarm, "warning" if alarm == "leak" else "info")))
        if "leak" not in alarms:
            self.alarms_sent.discard("leak")  # repaired: a new leak raises a new alarm
        body: dict[str, Any] = {"dateObserved": self.stamp(t), "waterConsumption": round(volume, 3),
                                "flow": round(flow, 1), "batteryLevel": round(battery, 3)}
        if alarms:
            body["alarms"] = alarms
        return body


class NetworkPoint(DeviceSim):
    """The DMA inlet (bulk flow + pressure) or a pressure-only point inside the DMA."""

    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        self.inlet = md.get("role") == "inlet"
        self.nominal = float(md.get("nominal_bar", 3.0))
        demand = world.dma_demand.get(str(md.get("dma")))
        self.demand = demand if demand else int(md.get("households", 250)) * MEAN_DAILY_M3  # m³/day
        loss = float(models()["water"]["loss_share"])
        self.losses = self.demand * loss / (1.0 - loss)  # m³/day, leaking around the clock
        self.mean_flow = self.demand * 1000.0 / 24.0  # L/h
        self._bursts = world.plan.of(device.device_id, "water_burst")
        for eff in self._bursts:
            if self.inlet:
                self.schedule(eff.start + 60, EVENT, self.event(
                    eff.start + 60, "burst", "critical", "main burst: inlet flow spike and pressure drop",
                    {"dma": md.get("dma")}))
            else:
                self.schedule(eff.start + 120, EVENT, self.event(
                    eff.start + 120, "lowPressure", "warning", "pressure below service level", {"dma": md.get("dma")}))

    def volume_at(self, t: int) -> float:
        """m³ delivered into the DMA from the epoch to ``t``: demand by the daily profile plus losses."""
        day = (t + OFFSET_S) // DAY
        sec = (t + OFFSET_S) % DAY
        h = sec // 3600
        profile = self.world.water_profile(t)
        frac = sum(profile[:h]) / 24.0 + profile[h] / 24.0 * (sec - h * 3600) / 3600.0
        return self.demand * ((day - EPOCH_DAY) + frac) + self.losses * (t - EPOCH) / DAY

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        profile = self.world.water_profile(t)[_hour(t)]
        flow = self.mean_flow * profile * (0.93 + 0.14 * rng.random()) + self.losses * 1000.0 / 24.0
        # Head loss grows with demand: pressure is highest at night.
        pressure = self.nominal - 0.35 * profile + 0.04 * (rng.random() - 0.5)
        for eff in self._bursts:
            if eff.active(t):
                flow += self.mean_flow * float(eff.params.get("flow_factor", 3.0))
                pressure *= float(eff.params.get("pressure_factor", 0.35))
        pressure = max(pressure, 0.0)
        if self.inlet:
            return {"dateObserved": self.stamp(t), "waterConsumption": round(self.volume_at(t), 3),
                    "flow": round(flow, 1), "pressure": round(pressure, 3)}
        return {"dateObserved": self.stamp(t), "pressure": round(pressure, 3)}
