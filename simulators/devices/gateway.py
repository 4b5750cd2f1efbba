"""Gateways and network servers: no telemetry, only their own status (the last will of their connection)."""

from __future__ import annotations

from ioc.registry import Device
from simulators.devices.base import STATUS, Body, DeviceSim
from simulators.world import World


class Gateway(DeviceSim):
    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        super().__init__(device, index, world, start)
        for eff in world.plan.of(device.device_id, "gateway_outage"):
            self.schedule(eff.start, STATUS, "offline")
            self.schedule(eff.end, STATUS, "online")

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        return None
