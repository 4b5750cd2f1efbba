"""Water meters and network points, after FIWARE WaterConsumptionObserved."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ioc.contract.base import NonNegative, Ratio, Reading

WaterAlarm = Literal["leak", "tamper", "backflow", "lowBattery"]


class WaterReading(Reading):
    waterConsumption: NonNegative | None = Field(None, description="Cumulative volume, m³")
    flow: Annotated[float, Field(ge=-1e7, le=1e7)] | None = Field(
        None, description="Flow, L/h (negative is reverse flow)"
    )
    pressure: Annotated[float, Field(ge=0.0, le=40.0)] | None = Field(None, description="Pressure, bar")
    batteryLevel: Ratio | None = Field(None, description="Battery 0–1")
    alarms: Annotated[list[WaterAlarm], Field(max_length=4)] = Field(
        default_factory=list, description="Alarms active at this reading"
    )
