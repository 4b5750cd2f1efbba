"""The device registry: import from a file, and the lookup ingest uses to check who is talking."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Self

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ioc.contract.kinds import KINDS
from ioc.contract.topics import CITY_RE, DEVICE_ID_RE


class Device(BaseModel):
    """One registry row; also the record format of fleet files (JSON Lines, JSON array, or CSV)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: Annotated[str, Field(pattern=DEVICE_ID_RE.pattern)]
    family: str
    kind: str
    city: Annotated[str, Field(pattern=CITY_RE.pattern)]
    ward: str | None = None
    site: str | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    report_interval_s: Annotated[int, Field(gt=0)]
    gateway_id: str | None = None
    parent_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown kind {value!r}; one of {', '.join(KINDS)}")
        return value

    @model_validator(mode="after")
    def _kind_in_family(self) -> Self:
        expected = KINDS[self.kind].family
        if self.family != expected:
            raise ValueError(f"kind {self.kind!r} belongs to family {expected!r}, not {self.family!r}")
        return self


class FleetFileError(ValueError):
    """A fleet file line that is not a valid device; names the file and line."""


class RegistryRefused(FleetFileError):
    """The database refused the devices (a kind its schema does not know: this code is newer than its schema)."""


def read_devices(path: Path) -> Iterator[Device]:
    """Devices from ``.jsonl``, ``.json`` (array) or ``.csv`` (metadata as a JSON column)."""
    rows: Iterable[tuple[int, Any]]
    with path.open(encoding="utf-8", newline="") as fh:
        if path.suffix == ".csv":
            rows = enumerate(csv.DictReader(fh), start=2)
        elif path.suffix == ".json":
            try:
                rows = enumerate(json.load(fh), start=1)
            except json.JSONDecodeError as exc:
                raise FleetFileError(f"{path}: not a JSON array of devices: {exc}") from None
        elif path.suffix in (".jsonl", ".ndjson"):
            rows = ((i, line) for i, line in enumerate(fh, start=1) if line.strip())
        else:
            raise FleetFileError(f"{path}: unknown file type; use .jsonl, .json or .csv")
        for line, raw in rows:
            try:
                record = json.loads(raw) if isinstance(raw, str) else _csv_row(raw) if path.suffix == ".csv" else raw
                yield Device.model_validate(record)
            except (ValidationError, ValueError) as exc:
                raise FleetFileError(f"{path}:{line}: {exc}") from None


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
    if out.get("metadata"):
        out["metadata"] = json.loads(out["metadata"])
    else:
        out.pop("metadata", None)
    return out


_COLUMNS = ("device_id", "family", "kind", "city", "ward", "site", "lat", "lon", "report_interval_s",
            "gateway_id", "parent_id", "metadata")


def upsert_devices(conn: psycopg.Connection[Any], devices: Iterable[Device]) -> int:
    """Insert or update devices (by id) in one transaction; returns how many rows were written."""
    kinds: set[str] = set()
    try:
        return _upsert(conn, devices, kinds)
    except psycopg.errors.CheckViolation as exc:
        if exc.diag.constraint_name != "devices_kind_known":
            raise
        raise RegistryRefused(
            f"the database refuses one of the kinds {', '.join(sorted(kinds))} (constraint devices_kind_known): "
            "its schema knows only the kinds of its migrations; run `ioc db migrate` with this version") from None


def _upsert(conn: psycopg.Connection[Any], devices: Iterable[Device], kinds: set[str]) -> int:
    count = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE _devices_in (LIKE ioc.devices INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cur.copy(f"COPY _devices_in ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for device in devices:
                kinds.add(device.kind)
                row = device.model_dump()
                row["metadata"] = json.dumps(row["metadata"], ensure_ascii=False)
                copy.write_row([row[c] for c in _COLUMNS])
                count += 1
        cols = ", ".join(_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])
        cur.execute(
            f"INSERT INTO ioc.devices ({cols}) SELECT {cols} FROM _devices_in"
            f" ON CONFLICT (device_id) DO UPDATE SET {updates}, updated_at = now()"
        )
        cur.execute(
            "INSERT INTO ioc.device_state (device_id) SELECT device_id FROM _devices_in ON CONFLICT DO NOTHING"
        )
    return count
