"""Response models shared by several routes (the OpenAPI schema that clients and schemathesis check)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

State = Literal["online", "offline", "silent", "decommissioned"]


class DeviceOut(BaseModel):
    device_id: str
    family: str
    kind: str
    city: str
    ward: str | None
    site: str | None
    lat: float | None
    lon: float | None
    report_interval_s: int
    gateway_id: str | None
    parent_id: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    decommissioned_at: datetime | None
    status: str | None = Field(description="status the device (or its gateway) last reported: online/offline/unknown")
    status_changed_at: datetime | None
    last_seen: datetime | None = Field(description="arrival time of its newest message")
    last_reading_time: datetime | None = Field(description="newest device timestamp of any message")
    state: State = Field(description="offline if it said so, silent if quiet for over 2 report intervals, else online")


class DeviceDetail(DeviceOut):
    last_reading_at: datetime | None = Field(description="reading time of last_reading")
    last_reading: dict[str, Any] | None = Field(description="the newest reading by reading time (not arrival)")


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next: str | None = Field(description="URL of the next page; null on the last one")
