"""Dusk and dawn at a place (astral, civil twilight): when street lamps are expected to be lit."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sun


def dawn_dusk(at: datetime, lat: float, lon: float, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Dawn and dusk of the local day containing ``at``."""
    s = sun(Observer(latitude=lat, longitude=lon), at.astimezone(tz).date(), tzinfo=tz)
    return s["dawn"], s["dusk"]


def is_night(at: datetime, lat: float, lon: float, tz: ZoneInfo) -> bool:
    dawn, dusk = dawn_dusk(at, lat, lon, tz)
    return at < dawn or at >= dusk


def next_change(at: datetime, lat: float, lon: float, tz: ZoneInfo) -> datetime:
    """When lamps should next switch (the next dawn or dusk after ``at``)."""
    dawn, dusk = dawn_dusk(at, lat, lon, tz)
    if at < dawn:
        return dawn
    if at < dusk:
        return dusk
    return dawn_dusk(at + timedelta(days=1), lat, lon, tz)[0]
