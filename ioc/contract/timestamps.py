"""Device timestamps: ISO 8601 with an explicit offset, or integer epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# Readings before this are a device with an unset clock (1970, 2000 …), not history.
EARLIEST_PLAUSIBLE = datetime(2015, 1, 1, tzinfo=UTC)


def parse_device_time(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("timestamp must be an ISO 8601 string with offset or epoch milliseconds, not a boolean")
    if isinstance(value, int):
        try:
            parsed = datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"epoch milliseconds {value} out of range") from exc
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"timestamp {value[:40]!r} is not ISO 8601") from exc
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {value[:40]!r} has no UTC offset; add 'Z' or '+07:00'")
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp has no UTC offset")
        parsed = value
    else:
        raise ValueError("timestamp must be an ISO 8601 string with offset or integer epoch milliseconds")
    parsed = parsed.astimezone(UTC)
    if parsed < EARLIEST_PLAUSIBLE:
        raise ValueError(f"timestamp {parsed.isoformat()} is before {EARLIEST_PLAUSIBLE.date()}; is the device clock set?")
    return parsed


def format_device_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


DeviceTime = Annotated[
    datetime,
    BeforeValidator(parse_device_time),
    PlainSerializer(format_device_time, return_type=str),
    WithJsonSchema(
        {
            "description": "Reading time: ISO 8601 with offset (e.g. 2026-03-14T18:05:00+07:00) or epoch milliseconds",
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer", "minimum": int(EARLIEST_PLAUSIBLE.timestamp() * 1000)},
            ],
        }
    ),
]
