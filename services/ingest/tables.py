"""How each table's rows are built and copied: columns (in COPY order), binary COPY types, row builder, key.

Which table a kind's readings go to is ``ioc.contract.kinds`` (the one place for kind -> model -> table); this
module is shared by the decoder (which builds rows) and the writer (which copies them) so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.contract.environment import EnvironmentReading
from ioc.contract.events import DeviceEvent
from ioc.contract.kinds import EVENTS_TABLE, KINDS
from ioc.contract.lighting import CabinetReading, StreetlightReading
from ioc.contract.traffic import TrafficReading
from ioc.contract.water import WaterReading

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key: tuple[str, ...]  # the idempotency key: a row with the same key is a duplicate
    # builds the row without its last column, ``provenance`` (ioc.provenance), which decode appends
    to_row: Callable[[str, Any, datetime], Row]


def _lighting(device_id: str, r: StreetlightReading, now: datetime) -> Row:
    return (r.dateObserved, device_id, now, r.powerState, r.illuminanceLevel, r.powerConsumption, r.voltage,
            r.current, r.energyConsumed, r.status)


def _cabinet(device_id: str, r: CabinetReading, now: datetime) -> Row:
    v, i, p = r.voltage, r.intensity, r.activePower
    return (r.dateObserved, device_id, now, r.workingMode, r.powerState,
            v and v.R, v and v.S, v and v.T, i and i.R, i and i.S, i and i.T, p and p.R, p and p.S, p and p.T,
            r.energyConsumed)


def _water(device_id: str, r: WaterReading, now: datetime) -> Row:
    return (r.dateObserved, device_id, now, r.waterConsumption, r.flow, r.pressure, r.batteryLevel, list(r.alarms))


def _traffic(device_id: str, r: TrafficReading, now: datetime) -> Row:
    c = r.vehicleCount
    return (r.dateObserved, device_id, r.laneId, now, r.intensity, r.occupancy, r.averageVehicleSpeed, r.congested,
            c and c.motorcycle, c and c.car, c and c.bus, c and c.truck, c and c.bicycle)


def _environment(device_id: str, r: EnvironmentReading, now: datetime) -> Row:
    return (r.dateObserved, device_id, now, r.pm25, r.pm10, r.no2, r.o3, r.co, r.so2, r.temperature,
            r.relativeHumidity, r.precipitation, r.LAeq, r.LAmax, r.currentLevel)


def _event(device_id: str, e: DeviceEvent, now: datetime) -> Row:
    return (e.dateObserved, device_id, e.eventType, now, e.severity, e.description, e.data)


_T, _S, _R, _D = "timestamptz", "text", "float4", "float8"

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec("lighting_readings",
                  ("time", "device_id", "ingest_time", "power_state", "illuminance_level", "power_w", "voltage_v",
                   "current_a", "energy_kwh", "lamp_status", "provenance"),
                  (_T, _S, _T, _S, _R, _R, _R, _R, _D, _S, _S), ("device_id", "time"), _lighting),
        TableSpec("cabinet_readings",
                  ("time", "device_id", "ingest_time", "working_mode", "power_state",
                   "voltage_r_v", "voltage_s_v", "voltage_t_v", "current_r_a", "current_s_a", "current_t_a",
                   "power_r_kw", "power_s_kw", "power_t_kw", "energy_kwh", "provenance"),
                  (_T, _S, _T, _S, _S, _R, _R, _R, _R, _R, _R, _R, _R, _R, _D, _S), ("device_id", "time"), _cabinet),
        TableSpec("water_readings",
                  ("time", "device_id", "ingest_time", "consumption_m3", "flow_lph", "pressure_bar", "battery_level",
                   "alarms", "provenance"),
                  (_T, _S, _T, _D, _R, _R, _R, "text[]", _S), ("device_id", "time"), _water),
        TableSpec("traffic_readings",
                  ("time", "device_id", "lane_id", "ingest_time", "intensity", "occupancy", "avg_speed_kmh",
                   "congested", "motorcycles", "cars", "buses", "trucks", "bicycles", "provenance"),
                  (_T, _S, "int2", _T, "int4", _R, _R, "bool", "int4", "int4", "int4", "int4", "int4", _S),
                  ("device_id", "lane_id", "time"), _traffic),
        TableSpec("environment_readings",
                  ("time", "device_id", "ingest_time", "pm25", "pm10", "no2", "o3", "co", "so2", "temperature_c",
                   "relative_humidity", "precipitation_mm", "laeq_db", "lamax_db", "water_level_m", "provenance"),
                  (_T, _S, _T, _R, _R, _R, _R, _R, _R, _R, _R, _R, _R, _R, _R, _S), ("device_id", "time"),
                  _environment),
        TableSpec("device_events",
                  ("time", "device_id", "event_type", "ingest_time", "severity", "description", "data", "provenance"),
                  (_T, _S, _S, _T, _S, _S, "jsonb", _S), ("device_id", "event_type", "time"), _event),
    )
}


# Every table a kind names has a row builder here (checked at import: a new kind cannot reach decode without one).
_missing = {k.table for k in KINDS.values() if k.table} - TABLES.keys()
if _missing or EVENTS_TABLE not in TABLES:
    raise RuntimeError(f"ioc.contract.kinds names tables with no TableSpec: {_missing or EVENTS_TABLE}")
