"""Street lighting, after FIWARE Streetlight and StreetlightControlCabinet."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ioc.contract.base import STRICT, NonNegative, Ratio, Reading


class StreetlightReading(Reading):
    powerState: Literal["on", "off", "low"] | None = Field(None, description="Lamp state; 'low' is dimmed")
    illuminanceLevel: Ratio | None = Field(None, description="Dimming level 0–1")
    powerConsumption: NonNegative | None = Field(None, description="Instant power, W")
    voltage: NonNegative | None = Field(None, description="Supply voltage, V")
    current: NonNegative | None = Field(None, description="Current, A")
    energyConsumed: NonNegative | None = Field(None, description="Cumulative energy, kWh")
    status: Literal["ok", "defectiveLamp", "columnIssue", "brokenLantern"] | None = None


class PerPhase(BaseModel):
    """Three-phase values keyed R, S, T as in StreetlightControlCabinet."""

    model_config = STRICT

    R: NonNegative
    S: NonNegative
    T: NonNegative


class CabinetReading(Reading):
    workingMode: Literal["automatic", "manual", "semiautomatic"] | None = None
    powerState: Literal["on", "off", "low"] | None = None
    voltage: PerPhase | None = Field(None, description="Per-phase voltage, V")
    intensity: PerPhase | None = Field(None, description="Per-phase current, A")
    activePower: PerPhase | None = Field(None, description="Per-phase active power, kW")
    energyConsumed: NonNegative | None = Field(None, description="Cumulative energy, kWh")
