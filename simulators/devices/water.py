"""Household meters and DMA network points: morning/evening peaks, night minimum, bursts in one DMA."""

from __future__ import annotations

from typing import Any

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S
from simulators.devices.base import EVENT, Body, DeviceSim
from simulators.world import WATER_PROFILE, World, days_since_2024

# Share of meters with a leak behind them (continuous flow, a `leak` alarm) and the leak's size.
LEAKING_SHARE = 0.004
LEAK_L_PER_H = 18.0
LOW_BATTERY = 0.15
# Average household consumption (m³/day) when a point's DMA demand is estimated from its household count.
MEAN_DAILY_M3 = 0.55
# Real losses in a DMA as a share of mean demand: the night flow that never goes to zero.
DMA_LOSSES = 0.12


def _hour(t: int) -> int:
    return int(((t + OFFSET_S) % DAY) // 3600)


class Meter(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        rng = self.rng
        self.daily = float(md.get("daily_m3", 0.5))
        age = max(days_since_2024(start), 0.0)
        self.volume = float(md.get("start_m3", 100.0)) + self.daily * age
        self.battery = max(0.05, 1.0 - age * 0.0004 - 0.5 * rng.random())
        self.leak_from = start + int(rng.random() * 30 * DAY) if rng.random() < LEAKING_SHARE else None
        self.alarms_sent: set[str] = set()

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        flow = self.daily * 1000.0 / 24.0 * WATER_PROFILE[_hour(t)] * (0.7 + 0.6 * rng.random())
        alarms: list[str] = []
        if self.leak_from is not None and t >= self.leak_from:
            flow += LEAK_L_PER_H
            alarms.append("leak")
        self.battery = max(0.0, self.battery - 0.000_02)
        if self.battery < LOW_BATTERY:
            alarms.append("lowBattery")
        self.volume += flow * (t - self.last_t) / 3_600_000.0
        for alarm in alarms:
            if alarm not in self.alarms_sent:
                self.alarms_sent.add(alarm)
                extra.append((EVENT, self.event(t, alarm, "warning" if alarm == "leak" else "info")))
        body: dict[str, Any] = {"dateObserved": self.stamp(t), "waterConsumption": round(self.volume, 3),
                                "flow": round(flow, 1), "batteryLevel": round(self.battery, 3)}
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
        self.mean_flow = int(md.get("households", 250)) * MEAN_DAILY_M3 * 1000.0 / 24.0  # L/h
        self.volume = self.mean_flow / 1000.0 * 24.0 * max(days_since_2024(start), 0.0)
        self._bursts = world.plan.of(device.device_id, "water_burst")
        for eff in self._bursts:
            if self.inlet:
                self.schedule(eff.start + 60, EVENT, self.event(
                    eff.start + 60, "burst", "critical", "main burst: inlet flow spike and pressure drop",
                    {"dma": md.get("dma")}))
            else:
                self.schedule(eff.start + 120, EVENT, self.event(
                    eff.start + 120, "lowPressure", "warning", "pressure below service level", {"dma": md.get("dma")}))

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        profile = WATER_PROFILE[_hour(t)]
        flow = self.mean_flow * (profile * (0.93 + 0.14 * rng.random()) + DMA_LOSSES)
        # Head loss grows with demand: pressure is highest at night.
        pressure = self.nominal - 0.35 * profile + 0.04 * (rng.random() - 0.5)
        for eff in self._bursts:
            if eff.active(t):
                flow += self.mean_flow * float(eff.params.get("flow_factor", 3.0))
                pressure *= float(eff.params.get("pressure_factor", 0.35))
        pressure = max(pressure, 0.0)
        self.volume += flow * (t - self.last_t) / 3_600_000.0
        if self.inlet:
            return {"dateObserved": self.stamp(t), "waterConsumption": round(self.volume, 3),
                    "flow": round(flow, 1), "pressure": round(pressure, 3)}
        return {"dateObserved": self.stamp(t), "pressure": round(pressure, 3)}
