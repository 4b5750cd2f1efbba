"""Air-quality, noise and weather stations and the Nậm Rốm river gauges."""

from __future__ import annotations

import math

from ioc.registry import Device
from simulators.clock import local_date, local_hour
from simulators.devices.base import EVENT, Body, DeviceSim
from simulators.world import MONTH_PM, World

# QCVN 05:2023 24-h PM2.5 limit is 50 µg/m³; a station reports crossing 1.5× that, clears below the limit.
PM25_ALERT, PM25_CLEAR = 75.0, 50.0
# River travel time along the Nậm Rốm, hours per km downstream of the first gauge.
RIVER_LAG_H_PER_KM = 0.25


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
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        self.noise = 1.0  # slow multiplicative weather-driven wander, AR(1)
        self.alerting = False

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng, w = self.rng, self.world
        self.noise = max(0.5, min(1.8, 0.98 * self.noise + 0.02 + 0.05 * (rng.random() - 0.5)))
        hour = local_hour(t)
        rain = w.rain_rate(t // 3600)
        pm25 = 22.0 * MONTH_PM[local_date(t).month - 1] * _pm_diurnal(hour) * self.noise / (1.0 + 0.15 * rain)
        traffic = w.traffic_util(t)
        no2 = 12.0 + 35.0 * traffic + 4.0 * rng.random()
        o3 = 25.0 + 55.0 * max(0.0, math.sin((hour - 7.0) / 12.0 * math.pi)) + 5.0 * rng.random()
        co = 350.0 + 700.0 * traffic + 50.0 * rng.random()
        if pm25 > PM25_ALERT and not self.alerting:
            self.alerting = True
            extra.append((EVENT, self.event(t, "thresholdExceeded", "warning", "PM2.5 above 75 µg/m³",
                                            {"pm25": round(pm25, 1)})))
        elif pm25 < PM25_CLEAR and self.alerting:
            self.alerting = False
        return {"dateObserved": self.stamp(t), "pm25": round(pm25, 1), "pm10": round(pm25 * 1.65, 1),
                "no2": round(no2, 1), "o3": round(o3, 1), "co": round(co, 0)}


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
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        self.base = float(md.get("base_level_m", 1.4))
        self.warning = float(md.get("warning_level_m", 3.5))
        self.lag = float(md.get("river_km", 0.0)) * RIVER_LAG_H_PER_KM
        self.flooding = False

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        month = local_date(t).month
        seasonal = 0.5 if 6 <= month <= 9 else 0.2 if month in (5, 10) else 0.0
        level = self.base + seasonal + self.world.river_rise(t, self.lag) + 0.01 * (self.rng.random() - 0.5)
        if level >= self.warning and not self.flooding:
            self.flooding = True
            extra.append((EVENT, self.event(t, "flood", "critical", "Nậm Rốm above warning level",
                                            {"level": round(level, 2), "warning": self.warning})))
        elif level < self.warning - 0.2 and self.flooding:
            self.flooding = False
            extra.append((EVENT, self.event(t, "flood", "info", "Nậm Rốm back below warning level",
                                            {"level": round(level, 2)})))
        return {"dateObserved": self.stamp(t), "currentLevel": round(level, 3)}
