"""ITS counters, one reading per lane and period, after FIWARE TrafficFlowObserved."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from ioc.contract.base import STRICT, Ratio, Reading

Count = Annotated[int, Field(ge=0, le=100_000)]


class VehicleCount(BaseModel):
    """Vehicles by class in the period; motorcycles dominate Vietnamese traffic."""

    model_config = STRICT

    motorcycle: Count = 0
    car: Count = 0
    bus: Count = 0
    truck: Count = 0
    bicycle: Count = 0


class TrafficReading(Reading):
    laneId: Annotated[int, Field(ge=1, le=12)] = Field(description="Lane number at the counter, 1-based")
    intensity: Count = Field(description="Vehicles counted in the period")
    occupancy: Ratio | None = Field(None, description="Fraction of the period the detector was occupied, 0–1")
    averageVehicleSpeed: Annotated[float, Field(ge=0.0, le=250.0)] | None = Field(None, description="km/h")
    congested: bool | None = None
    vehicleCount: VehicleCount | None = None
