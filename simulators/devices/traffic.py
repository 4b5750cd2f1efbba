"""ITS counters: one reading per lane per minute; rush hours, days off, festivals, incidents and festival jams.

Volumes are per counter and day (``metadata.vehicles_per_day``, from the street class in the city file),
spread over the hours by the city-wide profile; vehicle classes are drawn per vehicle share and rounded by
systematic sampling so they add up to the lane's count and rare classes (buses, bicycles) do show. Congestion
comes from demand over capacity: ordinary days stay free except short incidents (a crash, a stalled truck,
hashed per counter and hour), festival evenings get dense, and the festival-jam scenario forces a jam.
"""

from __future__ import annotations

import math
from typing import Any

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S, local_date
from simulators.devices.base import EVENT, Body, DeviceSim
from simulators.rng import stable_seed, unit
from simulators.world import TRAFFIC_MEAN, World, models

CLASSES = ("motorcycle", "car", "bus", "truck", "bicycle")


def split_classes(n: int, cumulative: tuple[float, ...], u: float) -> dict[str, int]:
    """``n`` vehicles by class, systematic sampling with offset ``u`` in [0, 1): the counts sum to ``n`` and
    each class's expected count is ``n × share`` exactly, so rare classes show up now and then."""
    out: dict[str, int] = {}
    prev = 0
    for name, c in zip(CLASSES, cumulative, strict=True):
        k = int(n * c + u)
        out[name] = k - prev
        prev = k
    return out


class Counter(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        p = models()["traffic"]
        self.walking = md.get("street_class") == "walking"
        mix = p["walking_mix"] if self.walking else p["mix"]
        total = sum(mix[c] for c in CLASSES)
        acc = 0.0
        cumulative = []
        for c in CLASSES:
            acc += mix[c] / total
            cumulative.append(acc)
        cumulative[-1] = 1.0
        self.cumulative = tuple(cumulative)
        self.lanes = int(md.get("lanes", 2))
        self.free_speed = float(md.get("free_speed_kmh", 40))
        self.capacity = float(md.get("lane_capacity_per_min", 20)) * self.interval / 60.0
        lo, hi = p["street_weight"]
        self.street_weight = lo + (hi - lo) * self.rng.random()
        vpd = float(md.get("vehicles_per_day", 12_000))
        # Vehicles per lane and period at a utilisation of 1 (the weekday's mean hour).
        self.per_lane = vpd / 1440.0 * self.interval / 60.0 / self.lanes / TRAFFIC_MEAN
        self.occ_limit = float(p["congestion_occupancy"])
        self.speed_limit = float(p["congestion_speed_kmh"])
        self.hold = int(p["congestion_hold_min"])
        self.closed = p["walking_closed"]
        self._key = stable_seed(world.seed, "incident", device.device_id) & 0xFFFFFFFF
        self._incident_p = float(p["incident_probability_per_hour"])
        self._incident_min = p["incident_minutes"]
        self._inc_hour, self._inc_window = -1, (0, 0)
        self._jams = world.plan.of(device.device_id, "festival_jam")
        self.congested_for = 0
        self.reported = False

    def _closed_to_traffic(self, t: int) -> bool:
        h = int(((t + OFFSET_S) % DAY) // 3600)
        c = self.closed
        return local_date(t).weekday() in c["weekdays"] and c["from_h"] <= h < c["to_h"]

    def _incident(self, t: int) -> float:
        """Capacity left by an incident at ``t`` (1.0: none); at most one per hour, hashed per counter."""
        hour = t // 3600
        if hour != self._inc_hour:  # drawn once per hour
            self._inc_hour, self._inc_window = hour, (0, 0)
            if unit(self._key, hour) < self._incident_p:
                lo, hi = self._incident_min
                start = hour * 3600 + int(3600 * unit(self._key ^ 0x11, hour))
                self._inc_window = (start, start + int(60 * (lo + (hi - lo) * unit(self._key ^ 0x22, hour))))
        a, b = self._inc_window
        return 0.12 if a <= t < b else 1.0  # a blocked lane, rubbernecking, a queue

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        util = self.world.traffic_util(t) * self.street_weight
        if self.walking and self._closed_to_traffic(t):
            util *= 0.05  # pedestrians only; a few bicycles pushed through
        jam = any(eff.active(t) for eff in self._jams)
        capacity = self.capacity * (1.0 if self.walking else self._incident(t))
        lanes: list[dict[str, Any]] = []
        any_congested = False
        stamp = self.stamp(t)
        for lane in range(1, self.lanes + 1):
            mean = self.per_lane * util * (1.1 if lane == 1 else 0.95)
            if jam:
                occupancy = 0.75 + 0.2 * rng.random()
                speed = 3.0 + 7.0 * rng.random()
                intensity = int(self.capacity * (0.15 + 0.2 * rng.random()))
            else:
                # Poisson-like count (normal approximation; exact enough above a few vehicles a minute).
                intensity = max(0, round(mean + math.sqrt(mean) * 1.7 * (rng.random() - 0.5)))
                vc = min(mean / capacity, 1.3) if capacity else 1.3
                occupancy = min(0.98, 0.03 + 0.6 * vc * vc)
                speed = self.free_speed * max(0.1, 1.0 - 0.85 * vc ** 4) * (0.92 + 0.16 * rng.random())
            congested = occupancy > self.occ_limit or speed < self.speed_limit
            any_congested |= congested
            lanes.append({"dateObserved": stamp, "laneId": lane, "intensity": intensity,
                          "occupancy": round(occupancy, 3), "averageVehicleSpeed": round(speed, 1),
                          "congested": congested,
                          "vehicleCount": split_classes(intensity, self.cumulative, rng.random())})
        # Hysteresis both ways: report after `hold` congested periods, clear after as many free ones.
        self.congested_for = max(self.congested_for, 0) + 1 if any_congested else min(self.congested_for, 0) - 1
        if self.congested_for >= self.hold and not self.reported:
            self.reported = True
            extra.append((EVENT, self.event(t, "congestion", "warning", f"congestion on {self.device.site}",
                                            {"intersection": self.device.metadata.get("intersection")})))
        elif self.congested_for <= -self.hold and self.reported:
            self.reported = False
            extra.append((EVENT, self.event(t, "congestion", "info", "congestion cleared", {"cleared": True})))
        return lanes
