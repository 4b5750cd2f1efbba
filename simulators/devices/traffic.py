"""ITS counters: one reading per lane per minute; rush hours, weekends, festivals and festival jams."""

from __future__ import annotations

from typing import Any

from ioc.registry import Device
from simulators.devices.base import EVENT, Body, DeviceSim
from simulators.world import World

# Vehicle mix of Điện Biên Phủ streets: motorcycles dominate.
MIX = (("car", 0.14), ("bus", 0.02), ("truck", 0.04), ("bicycle", 0.02))
# Minutes a counter must stay congested before it reports it (avoids an event per red light).
CONGESTION_HOLD = 3


class Counter(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        md = device.metadata
        self.lanes = int(md.get("lanes", 2))
        self.free_speed = float(md.get("free_speed_kmh", 40))
        # Capacity per lane and period; the period is the report interval.
        self.capacity = float(md.get("lane_capacity_per_min", 30)) * self.interval / 60.0
        self.street_weight = 0.7 + 0.6 * self.rng.random()
        self._jams = world.plan.of(device.device_id, "festival_jam")
        self.congested_for = 0
        self.reported = False

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        rng = self.rng
        util = self.world.traffic_util(t) * self.street_weight
        jam = any(eff.active(t) for eff in self._jams)
        lanes: list[dict[str, Any]] = []
        any_congested = False
        for lane in range(1, self.lanes + 1):
            lane_util = util * (1.1 if lane == 1 else 0.95) * (0.85 + 0.3 * rng.random())
            if jam:
                occupancy = 0.75 + 0.2 * rng.random()
                speed = 3.0 + 7.0 * rng.random()
                intensity = int(self.capacity * (0.15 + 0.2 * rng.random()))
            else:
                vc = min(lane_util, 1.15)
                intensity = max(0, round(self.capacity * min(vc, 1.0) * (0.9 + 0.2 * rng.random())))
                occupancy = min(0.98, 0.03 + 0.55 * vc * vc)
                speed = self.free_speed * max(0.12, 1.0 - 0.8 * vc ** 4) * (0.92 + 0.16 * rng.random())
            congested = occupancy > 0.6 or speed < 12.0
            any_congested |= congested
            counts = {name: int(intensity * share) for name, share in MIX}
            counts = {"motorcycle": intensity - sum(counts.values()), **counts}
            lanes.append({"dateObserved": self.stamp(t), "laneId": lane, "intensity": intensity,
                          "occupancy": round(occupancy, 3), "averageVehicleSpeed": round(speed, 1),
                          "congested": congested, "vehicleCount": counts})
        # Hysteresis both ways: report after CONGESTION_HOLD congested periods, clear after as many free ones.
        self.congested_for = max(self.congested_for, 0) + 1 if any_congested else min(self.congested_for, 0) - 1
        if self.congested_for >= CONGESTION_HOLD and not self.reported:
            self.reported = True
            extra.append((EVENT, self.event(t, "congestion", "warning", f"congestion on {self.device.site}",
                                            {"intersection": self.device.metadata.get("intersection")})))
        elif self.congested_for <= -CONGESTION_HOLD and self.reported:
            self.reported = False
            extra.append((EVENT, self.event(t, "congestion", "info", "congestion cleared", {"cleared": True})))
        return lanes
