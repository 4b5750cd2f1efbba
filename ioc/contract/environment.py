"""Air quality, noise, weather and river gauges, after FIWARE AirQualityObserved,
NoiseLevelObserved, WeatherObserved and FloodMonitoring."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from ioc.contract.base import NonNegative, Ratio, Reading

Concentration = Annotated[float, Field(ge=0.0, le=10_000.0)]


class EnvironmentReading(Reading):
    pm25: Concentration | None = Field(None, description="PM2.5, µg/m³")
    pm10: Concentration | None = Field(None, description="PM10, µg/m³")
    no2: Concentration | None = Field(None, description="NO2, µg/m³")
    o3: Concentration | None = Field(None, description="O3, µg/m³")
    co: Concentration | None = Field(None, description="CO, µg/m³")
    so2: Concentration | None = Field(None, description="SO2, µg/m³")
    temperature: Annotated[float, Field(ge=-40.0, le=60.0)] | None = Field(None, description="°C")
    relativeHumidity: Ratio | None = Field(None, description="0–1")
    precipitation: NonNegative | None = Field(None, description="mm in the period")
    LAeq: Annotated[float, Field(ge=0.0, le=200.0)] | None = Field(None, description="Equivalent level, dB(A)")
    LAmax: Annotated[float, Field(ge=0.0, le=200.0)] | None = Field(None, description="Max level, dB(A)")
    currentLevel: Annotated[float, Field(ge=-50.0, le=500.0)] | None = Field(None, description="River water level, m")

    @model_validator(mode="after")
    def _has_a_measurement(self) -> Self:
        if all(getattr(self, name) is None for name in MEASUREMENTS):
            raise ValueError(f"reading has no measurement; expected at least one of {', '.join(MEASUREMENTS)}")
        return self


MEASUREMENTS = tuple(n for n in EnvironmentReading.model_fields if n not in ("dateObserved", "deviceId"))
