"""Device timestamps: ISO 8601 with an explicit offset, or integer epoch milliseconds.

ISO strings are parsed and range-checked inside pydantic-core (no Python call per reading: this is the
ingest's hottest field); epoch milliseconds take a small Python conversion.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, AwareDatetime, Field, PlainSerializer, WithJsonSchema

# Readings before this are a device with an unset clock (1970, 2000 …), not history.
EARLIEST_PLAUSIBLE = datetime(2015, 1, 1, tzinfo=UTC)
_EARLIEST_MS = int(EARLIEST_PLAUSIBLE.timestamp() * 1000)
_LATEST_MS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def format_device_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


if TYPE_CHECKING:  # what validated models hold: the int branch is converted by from_epoch_ms
    DeviceTime = datetime
else:
    DeviceTime = Annotated[
        Annotated[AwareDatetime, Field(ge=EARLIEST_PLAUSIBLE)]
        | Annotated[int, Field(ge=_EARLIEST_MS, le=_LATEST_MS), AfterValidator(from_epoch_ms)],
        PlainSerializer(format_device_time, return_type=str),
        WithJsonSchema(
            {
                "description": "Reading time: ISO 8601 with offset (e.g. 2026-03-14T18:05:00+07:00) "
                "or epoch milliseconds",
                "anyOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "integer", "minimum": _EARLIEST_MS, "maximum": _LATEST_MS},
                ],
            }
        ),
    ]
