"""Device models, one class per kind (see ``ioc.contract.kinds``)."""

from __future__ import annotations

from ioc.registry import Device
from simulators.devices.base import EVENT, STATUS, TELEMETRY, Body, DeviceSim, Emission
from simulators.devices.environment import AirQuality, Noise, RiverGauge, Weather
from simulators.devices.gateway import Gateway
from simulators.devices.lighting import Cabinet, Streetlight
from simulators.devices.traffic import Counter
from simulators.devices.water import Meter, NetworkPoint
from simulators.world import World

MODELS: dict[str, type[DeviceSim]] = {
    "streetlight": Streetlight,
    "cabinet": Cabinet,
    "meter": Meter,
    "network_point": NetworkPoint,
    "counter": Counter,
    "air_quality": AirQuality,
    "noise": Noise,
    "weather": Weather,
    "river_gauge": RiverGauge,
    "gateway": Gateway,
}


def make_sim(device: Device, index: int, world: World, start: int) -> DeviceSim:
    return MODELS[device.kind](device, index, world, start)


__all__ = ["EVENT", "MODELS", "STATUS", "TELEMETRY", "Body", "DeviceSim", "Emission", "make_sim"]
