"""Sandboxes: send a simulation or a replay to a city of its own, next to the live one, with one option.

A sandbox named ``dien-bien-phu`` is the city ``sim-dien-bien-phu``. Its devices are the live ones' registry rows
with the id prefixed ``SIM-`` (ioc.devices is keyed by id alone, so a sandbox device never shadows a live one),
the sandbox city, gateway and parent ids mapped the same way, and ``metadata.provenance`` ``simulated`` or
``replayed``. Ingest stores their readings with that provenance (``ioc.provenance``); the API, dashboards and
alert rules leave ``sim-…`` cities out unless asked. One sandbox at a time owns a ``SIM-`` id: registering it
in a second sandbox is refused (remove the first's devices, or use the same sandbox).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import sql
from pydantic import ValidationError

from ioc.contract.topics import CITY_RE, TOPIC_PREFIX
from ioc.provenance import Provenance, sandbox_city, sandbox_device_id
from ioc.registry import Device, upsert_devices

_READING_TABLES = ("lighting_readings", "cabinet_readings", "water_readings", "traffic_readings",
                   "environment_readings")


class SandboxError(ValueError):
    """The sandbox cannot be set up as asked (bad name, id taken by another city, …)."""


@dataclass(frozen=True, slots=True)
class Sandbox:
    city: str
    provenance: Provenance

    @classmethod
    def named(cls, name: str, provenance: Provenance) -> Sandbox:
        city = sandbox_city(name)
        if not CITY_RE.match(city):
            raise SandboxError(f"sandbox {name!r}: a city slug is lower-case letters, digits and '-' (got {city!r})")
        return cls(city, provenance)

    def device(self, device: Device) -> Device:
        """The sandbox twin of a live (or fleet) device."""
        row = device.model_dump()
        row.update(device_id=sandbox_device_id(device.device_id), city=self.city,
                   gateway_id=device.gateway_id and sandbox_device_id(device.gateway_id),
                   parent_id=device.parent_id and sandbox_device_id(device.parent_id),
                   metadata={**device.metadata, "provenance": self.provenance, "source_device_id": device.device_id})
        try:
            return Device.model_validate(row)
        except ValidationError as exc:
            raise SandboxError(f"device {device.device_id!r} has no valid sandbox id: {exc}") from None

    def topic(self, topic: str) -> str | None:
        """``ioc/v1/<city>/<family>/<id>/<channel>`` → the same in the sandbox; None for a topic outside that layout
        (it would land in no city, or in a live one)."""
        parts = topic.split("/")
        if len(parts) != 6 or "/".join(parts[:2]) != TOPIC_PREFIX or not parts[4]:
            return None
        parts[2], parts[4] = self.city, sandbox_device_id(parts[4])
        return "/".join(parts)

    def payload(self, payload: bytes) -> bytes:
        """A ``deviceId`` in the payload follows the topic's device (else ingest rejects it as device_mismatch)."""
        if b'"deviceId"' not in payload:
            return payload
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return payload
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("deviceId"), str):
                item["deviceId"] = sandbox_device_id(item["deviceId"])
        return orjson.dumps(doc)

    def register(self, dsn: str, devices: Sequence[Device]) -> int:
        """Insert or update the sandbox devices (already mapped with :meth:`device`); refuse ids of another city."""
        ids = [d.device_id for d in devices]
        with psycopg.connect(dsn) as conn:
            taken = conn.execute("SELECT device_id, city FROM ioc.devices WHERE device_id = ANY(%s) AND city <> %s"
                                 " ORDER BY device_id LIMIT 5", (ids, self.city)).fetchall()
            if taken:
                listed = ", ".join(f"{d} ({c})" for d, c in taken)
                raise SandboxError(f"device ids already registered in another city: {listed}; use that sandbox or "
                                   "delete those devices first")
            return upsert_devices(conn, devices)

    def devices_for(self, dsn: str, device_ids: Iterable[str]) -> tuple[list[Device], list[str]]:
        """Sandbox twins of the registered devices ``device_ids`` (and of their gateways), read from the live
        registry, and the ids the registry does not know (their messages would be rejected as unknown)."""
        wanted = {d for d in device_ids if not d.startswith("SIM-")}
        found: dict[str, Device] = {}
        with psycopg.connect(dsn) as conn:
            for _ in range(2):  # the devices, then gateways they name that were not among them
                rows = conn.execute(_SELECT_DEVICES, (sorted(wanted - set(found)),)).fetchall()
                for row in rows:
                    found[row[0]] = Device.model_validate(dict(zip(_DEVICE_COLUMNS, row, strict=True)))
                wanted |= {d.gateway_id for d in found.values() if d.gateway_id}
        missing = sorted(wanted - set(found))
        return [self.device(d) for d in found.values()], missing


_DEVICE_COLUMNS = ("device_id", "family", "kind", "city", "ward", "site", "lat", "lon", "report_interval_s",
                   "gateway_id", "parent_id", "metadata")
_SELECT_DEVICES = sql.SQL("SELECT {} FROM ioc.devices WHERE device_id = ANY(%s) AND city NOT LIKE 'sim-%%'").format(
    sql.SQL(", ").join(map(sql.Identifier, _DEVICE_COLUMNS)))


def live_readings(dsn: str) -> int:
    """How many reading tables of this database hold live or back-filled rows (0: safe to replay into)."""
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        tables = 0
        for table in _READING_TABLES:
            if conn.execute("SELECT to_regclass(%s)", (f"ioc.{table}",)).fetchone() == (None,):
                continue
            has_column = conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = 'ioc' AND table_name = %s"
                " AND column_name = 'provenance'", (table,)).fetchone()
            where = sql.SQL(" WHERE provenance IN ('live', 'backfill')" if has_column else "")
            row: Any = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {}{})").format(
                sql.Identifier("ioc", table), where)).fetchone()
            tables += bool(row and row[0])
        return tables


__all__ = ["Sandbox", "SandboxError", "live_readings"]
