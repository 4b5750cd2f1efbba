"""Shared pieces of every payload model."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ioc.contract.timestamps import DeviceTime

# Strict types (a number sent as a string is an integrator bug worth reporting), unknown fields rejected
# (a misspelt field would otherwise vanish silently), NaN/Infinity refused.
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True, populate_by_name=False)

Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
# Upper bounds keep every value inside the float4 columns' range; no real sensor comes near them.
NonNegative = Annotated[float, Field(ge=0.0, le=1e9)]
DeviceIdField = Annotated[
    str, Field(min_length=1, max_length=64, description="Optional; must equal the topic's device id")
]


class Reading(BaseModel):
    """Fields every telemetry reading has."""

    model_config = STRICT

    dateObserved: DeviceTime
    deviceId: DeviceIdField | None = None
