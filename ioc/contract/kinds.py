"""Device kinds: which payload model a device's telemetry follows and which table stores it.

The one place that maps kind -> payload model -> table. ``services/ingest/tables.py`` only says how a table's
rows are built and copied; the registry's CHECK constraint (migration 0006) lists the same kind names (a test
keeps them equal, so a new kind comes with a migration).
"""

from __future__ import annotations

from dataclasses import dataclass

from ioc.contract.base import Reading
from ioc.contract.environment import EnvironmentReading
from ioc.contract.lighting import CabinetReading, StreetlightReading
from ioc.contract.topics import Family
from ioc.contract.traffic import TrafficReading
from ioc.contract.water import WaterReading


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    family: Family
    model: type[Reading] | None  # None: the kind publishes no telemetry (gateways)
    table: str | None
    description: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("streetlight", Family.LIGHTING, StreetlightReading, "lighting_readings", "street lamp controller"),
        Kind("cabinet", Family.LIGHTING, CabinetReading, "cabinet_readings", "lighting control cabinet / feeder"),
        Kind("meter", Family.WATER, WaterReading, "water_readings", "household or bulk water meter"),
        Kind("network_point", Family.WATER, WaterReading, "water_readings", "network pressure/flow point"),
        Kind("counter", Family.TRAFFIC, TrafficReading, "traffic_readings", "ITS traffic counter, per lane"),
        Kind("air_quality", Family.ENVIRONMENT, EnvironmentReading, "environment_readings", "air-quality station"),
        Kind("noise", Family.ENVIRONMENT, EnvironmentReading, "environment_readings", "noise monitor"),
        Kind("weather", Family.ENVIRONMENT, EnvironmentReading, "environment_readings", "weather station"),
        Kind("river_gauge", Family.ENVIRONMENT, EnvironmentReading, "environment_readings", "river level gauge"),
        Kind("gateway", Family.GATEWAY, None, None, "gateway or network server (status only)"),
    )
}

# Device events (the `event` channel) share one model and table across kinds.
EVENTS_TABLE = "device_events"

# Derived, never written twice: table -> the payload model whose readings it stores.
TELEMETRY_MODELS: dict[str, type[Reading]] = {k.table: k.model for k in KINDS.values() if k.table and k.model}
