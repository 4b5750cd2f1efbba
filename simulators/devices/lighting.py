"""Street lamps and their control cabinets: on at dusk, off at dawn, dimmed after midnight, feeder trips,
phase loss, lamp failures that get repaired, supply voltage that follows the cabinet's phase.

Energy counters are a closed form of the device's whole history since :data:`simulators.world.EPOCH`
(equivalent burning hours × rated power, minus the hours lost to failures), so every run continues them.
Scenario outages (trip, phase loss) freeze the counter for the rest of the run that contains them; a later
run without the scenario is therefore never below it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S
from simulators.devices.base import EVENT, STATUS, TELEMETRY, Body, DeviceSim
from simulators.rng import stable_seed, unit
from simulators.scenario import Effect
from simulators.world import EPOCH, World

POWER_FACTOR = 0.95
PHASES = "RST"
# Failures are drawn per lamp and quarter: at most one per quarter, repaired after a configurable time.
QUARTER_S = 91 * DAY


def _outages(effects: list[Effect], phase: str | None) -> list[Effect]:
    """Trips, and phase losses of ``phase`` (None: a cabinet, which loses one phase but stays up)."""
    out = [e for e in effects if e.type == "cabinet_trip"]
    if phase is not None:
        out += [e for e in effects if e.type == "phase_loss" and str(e.params.get("phase", "S")) == phase]
    return out


class Streetlight(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        p = world.power_p
        self.rated = float(md.get("rated_w", 100))
        self.dimmable = bool(md.get("dimmable", False))
        self.solar = md.get("lamp_type") == "solar"
        self.phase = str(md.get("phase", "R"))
        self.phase_n = PHASES.index(self.phase) if self.phase in PHASES else 0
        self.cabinet = world.cabinet_index.get(device.parent_id or "", 0)
        self._vkey = world.volt_key(self.cabinet, self.phase_n, 0)
        # Solar lamps switch on their own light sensor, not with the cabinet.
        self.offset = 0 if self.solar else world.cabinet_offset.get(device.parent_id or "", 0)
        rng = self.rng
        self.efficiency = 0.97 + 0.06 * rng.random()  # driver losses and ageing, per lamp
        lo, hi = p["lamp_drop"]
        self.drop = 1.0 - (lo + (hi - lo) * rng.random())  # line drop from the cabinet to this column
        self._fail_key = stable_seed(world.seed, "fail", device.device_id) & 0xFFFFFFFF
        self._fail_p = float(p["lamp_failures_per_year"]) * QUARTER_S / (365 * DAY)
        self._repair = (float(p["repair_days"][0]) * DAY, float(p["repair_days"][1]) * DAY)
        self._failures: list[tuple[int, int]] = []
        self._failures_until = -1  # quarters drawn so far
        self._lost: dict[int, float] = {}  # burning hours lost by each finished failure, by its start
        self._failed, self._next_change, self._lost_h = False, -1, 0.0
        self.status = "defectiveLamp" if self._failed_at(start) else "ok"
        effects = [] if self.solar or not device.parent_id else world.plan.of(device.parent_id)
        self._trips = _outages(effects, self.phase)
        for eff in self._trips:
            # Last gasp at the trip (the controller's capacitor), then the will fires; back when power returns.
            self.schedule(eff.start, TELEMETRY, partial(self._dark, eff.start))
            self.schedule(eff.start, STATUS, "offline")
            self.schedule(eff.end, STATUS, "online")

    # -- failures: a pure function of (seed, lamp, time) ---------------------------------------------

    def _draw_until(self, t: int) -> None:
        q_end = (t - EPOCH) // QUARTER_S
        while self._failures_until < q_end:
            q = self._failures_until = self._failures_until + 1
            if unit(self._fail_key, 2 * q) < self._fail_p:
                start = EPOCH + q * QUARTER_S + int(QUARTER_S * unit(self._fail_key ^ 0xF00D, q))
                lo, hi = self._repair
                self._failures.append((start, start + int(lo + (hi - lo) * unit(self._fail_key, 2 * q + 1))))

    def _failed_at(self, t: int) -> bool:
        """Whether the lamp is failed at ``t``; recomputed only when the next failure or repair is due."""
        if t < self._next_change:
            return self._failed
        self._draw_until(t + QUARTER_S)
        failed, nxt = False, EPOCH + (self._failures_until + 1) * QUARTER_S
        for a, b in self._failures:
            if a <= t < b:
                failed, nxt = True, b
                break
            if a > t:
                nxt = a
                break
        self._failed, self._next_change = failed, nxt
        w, off, dim = self.world, self.offset, self.dimmable
        lost = 0.0
        for a, b in self._failures:
            if b > t:
                break
            cached = self._lost.get(a)
            if cached is None:
                cached = self._lost[a] = w.burn_hours(b, off, dim) - w.burn_hours(a, off, dim)
            lost += cached
        self._lost_h = lost  # burning hours lost by the failures repaired before ``t``
        return failed

    def energy_at(self, t: int) -> float:
        """kWh from the epoch to ``t``: burning hours minus failed and (this run's) outage hours."""
        w, off, dim = self.world, self.offset, self.dimmable
        burn = w.burn_hours(t, off, dim)
        if not self._trips and (not self._failures or self._failures[0][0] >= t):
            return self.rated * self.efficiency * burn / 1000.0  # the common case: never failed yet
        self._draw_until(t)
        lost = 0.0
        for a, b in self._failures:
            if a >= t:
                break
            if b <= t:
                done = self._lost.get(a)
                if done is None:
                    done = self._lost[a] = w.burn_hours(b, off, dim) - w.burn_hours(a, off, dim)
                lost += done
            else:  # failed now: nothing burns since it broke
                lost += burn - w.burn_hours(a, off, dim)
        burn -= lost
        for eff in self._trips:
            if eff.start < t:
                burn -= w.burn_hours(min(t, eff.end), off, dim) - w.burn_hours(eff.start, off, dim)
        return self.rated * self.efficiency * burn / 1000.0

    def _dark(self, t: int) -> dict[str, Any]:
        return {"dateObserved": self.stamp(t), "powerState": "off", "illuminanceLevel": 0.0,
                "powerConsumption": 0.0, "voltage": 0.0, "current": 0.0,
                "energyConsumed": round(self.energy_at(t), 3), "status": self.status}

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        for eff in self._trips:
            if eff.active(t):
                return None  # no supply, no radio
        rng, w = self.rng, self.world
        failed = self._failed_at(t) if t >= self._next_change else self._failed
        status = "defectiveLamp" if failed else "ok"
        if status != self.status:
            self.status = status
            if failed:
                extra.append((EVENT, self.event(t, "lampFailure", "warning", "lamp does not light",
                                                {"ratedW": self.rated})))
            else:
                extra.append((EVENT, self.event(t, "lampRepaired", "info", "lamp replaced", {"ratedW": self.rated})))
        # lamp_level and burn_hours of the world, inlined on one lookup of the day (the hot path of a city).
        tt = t - self.offset
        day = (tt + OFFSET_S) // DAY
        info = w._days.get(day) or w._day_info(day)
        start, dawn, dusk, k, full, dim = info
        level = 1.0 if tt >= dusk else ((k if self.dimmable else 1.0) if tt < dawn else 0.0)
        burning = level > 0 and not failed
        power = self.rated * level * (0.97 + 0.06 * rng.random()) if burning else 0.0
        if self.solar:
            lo, hi = w.power_p["solar_v"]
            voltage = lo + (hi - lo) * rng.random()
        else:
            v = w.volts.get(self._vkey + t // 900)
            if v is None:
                v = w.phase_voltage(self.cabinet, self.phase_n, t)
            voltage = v * self.drop * (0.998 + 0.004 * rng.random())
        current = power / voltage / POWER_FACTOR if voltage > 1.0 else 0.0
        if self._trips or failed:
            energy = self.energy_at(t)
        else:
            if self.dimmable:
                burn = dim + k * ((tt if tt < dawn else dawn) - start)
            else:
                burn = full + (tt if tt < dawn else dawn) - start
            if tt > dusk:
                burn += tt - dusk
            energy = self.rated * self.efficiency * (burn / 3600.0 - self._lost_h) / 1000.0 if tt >= EPOCH else 0.0
        state = "off" if level == 0 else ("low" if level < 1 else "on")
        return {"dateObserved": self.stamp(t), "powerState": state, "illuminanceLevel": level,
                "powerConsumption": round(power, 1), "voltage": round(voltage, 1), "current": round(current, 3),
                "energyConsumed": round(energy, 3), "status": self.status}


class Cabinet(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        rated = md.get("rated_w") or {"R": 1000.0, "S": 1000.0, "T": 1000.0}
        self.rated = {p: float(rated.get(p, 0.0)) for p in PHASES}
        self.total_rated = sum(self.rated.values())
        self.offset = int(md.get("switch_offset_s", 0))
        self.number = world.cabinet_index.get(device.device_id, 0)
        self.dim_share = world.cabinet_dimmable.get(device.device_id, 0.4)
        effects = world.plan.of(device.device_id)
        self._trips = [e for e in effects if e.type == "cabinet_trip"]
        self._phase_losses = [e for e in effects if e.type == "phase_loss"]
        for eff in self._trips:
            self.schedule(eff.start, EVENT, self.event(
                eff.start, "cabinetTrip", "critical", "feeder breaker tripped", {"feeder": md.get("feeder")}))
            self.schedule(eff.end, EVENT, self.event(eff.end, "powerRestored", "info", "feeder re-closed"))
        for eff in self._phase_losses:
            phase = str(eff.params.get("phase", "S"))
            self.schedule(eff.start, EVENT, self.event(
                eff.start, "phaseLoss", "critical", f"phase {phase} lost", {"phase": phase}))
            self.schedule(eff.end, EVENT, self.event(eff.end, "powerRestored", "info", f"phase {phase} back",
                                                     {"phase": phase}))

    def _phase_energy(self, t: int, phase: str) -> float:
        w, off = self.world, self.offset
        share = self.dim_share

        def hours(x: int) -> float:
            return (1 - share) * w.burn_hours(x, off, False) + share * w.burn_hours(x, off, True)

        burn = hours(t)
        for eff in self._trips + [e for e in self._phase_losses if str(e.params.get("phase", "S")) == phase]:
            if eff.start < t:
                burn -= hours(min(t, eff.end)) - hours(eff.start)
        return self.rated[phase] * burn / 1000.0

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng, w = self.rng, self.world
        tripped = any(eff.active(t) for eff in self._trips)
        lost = {str(e.params.get("phase", "S")) for e in self._phase_losses if e.active(t)}
        level = w.lamp_level(t, self.offset, True)
        load = 0.0 if tripped or level == 0 else (1.0 if level == 1 else 1.0 - 0.5 * self.dim_share)
        volts: dict[str, float] = {}
        kw: dict[str, float] = {}
        amps: dict[str, float] = {}
        for n, p in enumerate(PHASES):
            down = tripped or p in lost
            volts[p] = 0.0 if down else round(w.phase_voltage(self.number, n, t), 1)
            kw[p] = 0.0 if down else round(self.rated[p] * load * (0.98 + 0.04 * rng.random()) / 1000.0, 3)
            amps[p] = round(kw[p] * 1000.0 / volts[p] / POWER_FACTOR, 2) if volts[p] else 0.0
        if self._trips or self._phase_losses:
            energy = sum(self._phase_energy(t, p) for p in PHASES)
        else:  # the common case: one closed form for the whole cabinet
            share = self.dim_share
            hours = (1 - share) * w.burn_hours(t, self.offset, False) + share * w.burn_hours(t, self.offset, True)
            energy = self.total_rated * hours / 1000.0
        state = "off" if load == 0 else ("low" if level < 1 else "on")
        return {"dateObserved": self.stamp(t), "workingMode": "automatic", "powerState": state,
                "voltage": volts, "intensity": amps, "activePower": kw, "energyConsumed": round(energy, 3)}
