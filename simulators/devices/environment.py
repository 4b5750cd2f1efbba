"""Air-quality, noise and weather stations and the Nậm Rốm river gauges."""

from __future__ import annotations

import math

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S, local_date, local_hour
from simulators.devices.base import EVENT, Body, DeviceSim
from simulators.world import World

# QCVN 05:2023 24-h PM2.5 limit is 50 µg/m³; a station reports crossing 1.5× that, clears below the limit.
PM25_ALERT, PM25_CLEAR = 75.0, 50.0


def _pm_diurnal(hour: float) -> float:
    """Evening cooking, traffic and the inversion make 19–23 h worst; the mixed afternoon cleanest."""
    if 19 <= hour < 23:
        return 1.5
    if 6 <= hour < 9:
        return 1.25
    if 12 <= hour < 17:
        return 0.7
    return 1.0


class AirQuality(DeviceSim):
    """PM2.5/PM10 from the city-wide day factor (season, day-to-day weather, burning episodes), the diurnal
    shape, a station's own slow wander and a modest rain washout; SO₂ and CO from traffic; O₃ by season."""

    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        p = world.air_p
        self.noise = 1.0  # slow multiplicative station-level wander, AR(1)
        self.alerting = False
        self.base = float(p["pm25_base"])
        self.washout = float(p["washout_per_mm_h"])
        self.floor = float(p["washout_floor"])
        self.o3_month = p["o3_month_factor"]
        self.so2 = (float(p["so2_base"]), float(p["so2_traffic"]))
        self.site = 0.9 + 0.2 * self.rng.random()  # street canyon vs open site

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng, w = self.rng, self.world
        self.noise = max(0.6, min(1.5, 0.97 * self.noise + 0.03 + 0.06 * (rng.random() - 0.5)))
        hour = local_hour(t)
        rain = w.rain_rate(t // 3600)
        day = (t + OFFSET_S) // DAY
        washout = max(self.floor, 1.0 - self.washout * rain) if rain else 1.0
        pm25 = self.base * w.pm_day_factor(day) * _pm_diurnal(hour) * self.noise * self.site * washout
        traffic = w.traffic_util(t)
        no2 = 12.0 + 35.0 * traffic + 4.0 * rng.random()
        sunlit = max(0.0, math.sin((hour - 7.0) / 12.0 * math.pi))  # photochemistry follows the sun
        o3 = (25.0 + 55.0 * sunlit) * self.o3_month[local_date(t).month - 1] + 5.0 * rng.random()
        co = 350.0 + 700.0 * traffic + 50.0 * rng.random()
        so2 = self.so2[0] + self.so2[1] * traffic + 2.0 * rng.random()
        if pm25 > PM25_ALERT and not self.alerting:
            self.alerting = True
            extra.append((EVENT, self.event(t, "thresholdExceeded", "warning", "PM2.5 above 75 µg/m³",
                                            {"pm25": round(pm25, 1)})))
        elif pm25 < PM25_CLEAR and self.alerting:
            self.alerting = False
        return {"dateObserved": self.stamp(t), "pm25": round(pm25, 1), "pm10": round(pm25 * 1.65, 1),
                "no2": round(no2, 1), "o3": round(o3, 1), "co": round(co, 0), "so2": round(so2, 1)}


class Noise(DeviceSim):
    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        util = self.world.traffic_util(t)
        laeq = 47.0 + 22.0 * util + 3.0 * (rng.random() - 0.5)
        return {"dateObserved": self.stamp(t), "LAeq": round(laeq, 1),
                "LAmax": round(laeq + 8.0 + 10.0 * rng.random(), 1)}


class Weather(DeviceSim):
    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng, w = self.rng, self.world
        rain = w.rain_rate(t // 3600)
        temp = w.temperature(t) + 0.6 * (rng.random() - 0.5)
        hour = local_hour(t)
        rh = 0.72 - 0.18 * math.cos((hour - 14.0) / 24.0 * 2 * math.pi) + (0.12 if rain else 0.0)
        precipitation = rain * self.interval / 3600.0
        return {"dateObserved": self.stamp(t), "temperature": round(temp, 1),
                "relativeHumidity": round(min(max(rh, 0.2), 1.0), 3), "precipitation": round(precipitation, 2)}


class RiverGauge(DeviceSim):
    """Absolute water elevation (``metadata.datum``) against the alarm levels in ``metadata.alarm_levels_m``;
    a ``flood`` event when báo động I is crossed (critical from II), and when the river falls back."""

    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        self.low = float(md.get("low_water_m", 473.0))
        self.alarms = [float(a) for a in md.get("alarm_levels_m", [self.low + 2.0, self.low + 2.8, self.low + 3.6])]
        self.lag = float(md.get("river_km", 0.0)) * float(world.river_p.get("lag_h_per_km", 0.25))
        self.level_reported = 0  # alarm level reported last (0: below I)

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        level = self.low + self.world.river_stage(t, self.lag) + 0.01 * (self.rng.random() - 0.5)
        reached = sum(1 for a in self.alarms if level >= a)
        if reached > self.level_reported:
            self.level_reported = reached
            extra.append((EVENT, self.event(
                t, "flood", "critical" if reached >= 2 else "warning", f"Nậm Rốm above báo động {'I' * reached}",
                {"level": round(level, 2), "alarm_level": reached, "alarm_levels_m": self.alarms})))
        elif self.level_reported and level < self.alarms[0] - 0.2:
            self.level_reported = 0
            extra.append((EVENT, self.event(t, "flood", "info", "Nậm Rốm back below báo động I",
                                            {"level": round(level, 2), "alarm_level": 0})))
        return {"dateObserved": self.stamp(t), "currentLevel": round(level, 3)}
