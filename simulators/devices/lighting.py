"""Street lamps and their control cabinets: on at dusk, off at dawn, dimmed after midnight, feeder trips."""

from __future__ import annotations

from functools import partial
from typing import Any

from ioc.registry import Device
from simulators.devices.base import EVENT, STATUS, TELEMETRY, Body, DeviceSim
from simulators.world import World, days_since_2024

# A lamp fails about once in 10 years of 15-minute readings... times ten, so a city-day shows a few.
LAMP_FAILURE_PROBABILITY = 3e-5
POWER_FACTOR = 0.95
# Average burning hours per day, for a believable starting value of the energy counter.
BURN_HOURS_PER_DAY = 11.0


class Streetlight(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        self.rated = float(md.get("rated_w", 100))
        self.dimmable = bool(md.get("dimmable", False))
        self.solar = md.get("lamp_type") == "solar"
        self.offset = world.cabinet_offset.get(device.parent_id or "", 0)
        age = max(days_since_2024(start), 0.0)
        self.energy = round(self.rated * BURN_HOURS_PER_DAY * 0.8 * age / 1000 * (0.9 + 0.2 * self.rng.random()), 3)
        self.status = "ok"
        self._trips = world.plan.of(device.parent_id, "cabinet_trip") if device.parent_id else []
        for eff in self._trips:
            # Last gasp at the trip (the controller's capacitor), then the will fires; back when power returns.
            self.schedule(eff.start, TELEMETRY, partial(self._dark, eff.start))
            self.schedule(eff.start, STATUS, "offline")
            self.schedule(eff.end, STATUS, "online")

    def _dark(self, t: int) -> dict[str, Any]:
        return {"dateObserved": self.stamp(t), "powerState": "off", "illuminanceLevel": 0.0,
                "powerConsumption": 0.0, "voltage": 0.0, "current": 0.0,
                "energyConsumed": round(self.energy, 3), "status": self.status}

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        for eff in self._trips:
            if eff.active(t):
                return None  # no supply, no radio
        rng = self.rng
        level = self.world.lamp_level(t, self.offset, self.dimmable)
        if self.status == "ok" and rng.random() < LAMP_FAILURE_PROBABILITY:
            self.status = "defectiveLamp"
            extra.append((EVENT, self.event(t, "lampFailure", "warning", "lamp does not light",
                                            {"ratedW": self.rated})))
        burning = level > 0 and self.status == "ok"
        power = self.rated * level * (0.97 + 0.06 * rng.random()) if burning else 0.0
        voltage = (12.8 + 0.6 * rng.random()) if self.solar else (221.0 + 12.0 * rng.random())
        current = power / voltage / POWER_FACTOR
        self.energy += power * (t - self.last_t) / 3_600_000.0
        state = "off" if level == 0 else ("low" if level < 1 else "on")
        return {"dateObserved": self.stamp(t), "powerState": state, "illuminanceLevel": level,
                "powerConsumption": round(power, 1), "voltage": round(voltage, 1), "current": round(current, 3),
                "energyConsumed": round(self.energy, 3), "status": self.status}


class Cabinet(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        rated = md.get("rated_w") or {"R": 1000.0, "S": 1000.0, "T": 1000.0}
        self.rated = {p: float(rated.get(p, 0.0)) for p in "RST"}
        self.offset = int(md.get("switch_offset_s", 0))
        self.dim_share = world.cabinet_dimmable.get(device.device_id, 0.4)
        age = max(days_since_2024(start), 0.0)
        self.energy = round(sum(self.rated.values()) * BURN_HOURS_PER_DAY * 0.8 * age / 1000, 3)
        self._trips = world.plan.of(device.device_id, "cabinet_trip")
        for eff in self._trips:
            self.schedule(eff.start, EVENT, self.event(
                eff.start, "cabinetTrip", "critical", "feeder breaker tripped", {"feeder": md.get("feeder")}))
            self.schedule(eff.end, EVENT, self.event(eff.end, "powerRestored", "info", "feeder re-closed"))

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        tripped = any(eff.active(t) for eff in self._trips)
        level = self.world.lamp_level(t, self.offset, True)
        load = 0.0 if tripped or level == 0 else (1.0 if level == 1 else 1.0 - 0.5 * self.dim_share)
        volts = {p: (0.0 if tripped else round(224.0 + 10.0 * rng.random(), 1)) for p in "RST"}
        kw = {p: round(self.rated[p] * load * (0.98 + 0.04 * rng.random()) / 1000.0, 3) for p in "RST"}
        amps = {p: (round(kw[p] * 1000.0 / volts[p] / POWER_FACTOR, 2) if volts[p] else 0.0) for p in "RST"}
        self.energy += sum(kw.values()) * (t - self.last_t) / 3600.0
        state = "off" if load == 0 else ("low" if level < 1 else "on")
        return {"dateObserved": self.stamp(t), "workingMode": "automatic", "powerState": state,
                "voltage": volts, "intensity": amps, "activePower": kw, "energyConsumed": round(self.energy, 3)}
