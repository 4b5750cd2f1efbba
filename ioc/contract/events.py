"""The ``event`` channel (device-reported alarms) and the ``status`` channel (online/offline)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ioc.contract.base import Reading

EVENT_TYPES_DOC = (
    "lampFailure, columnIssue, cabinetTrip, doorOpen, powerRestored (lighting); leak, tamper, backflow, "
    "lowBattery, burst, lowPressure (water); congestion, incident (traffic); thresholdExceeded, flood "
    "(environment); sensorFault, clockDrift, reboot (any)"
)


class DeviceEvent(Reading):
    eventType: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$", description=EVENT_TYPES_DOC)]
    severity: Literal["info", "warning", "critical"] = "warning"
    description: Annotated[str, Field(max_length=500)] | None = None
    data: dict[str, Any] | None = Field(None, description="Free-form details, kept as JSON")


STATUS_VALUES = ("online", "offline")
