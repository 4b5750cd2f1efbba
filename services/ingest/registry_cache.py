"""The ingest's view of the device registry: loaded once, topped up for ids it has not seen."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ioc.db.connect import LazyConnection
from services.ingest.decode import DeviceInfo

# An id the registry did not know is asked again after this long: a device registered a minute ago
# starts being accepted without restarting ingest, while a flood from an unknown id costs one query a minute.
NEGATIVE_TTL_S = 60.0
# A full reload this often picks up edits to known devices (kind, city, gateway): ~50 ms for a 40 000-device city.
RELOAD_S = 300.0


class RegistryCache(dict[str, DeviceInfo]):
    """Owns its own connection: it is used by the decode stage while the writer's connection is mid-COPY."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._db = LazyConnection(dsn, "ioc-ingest-registry")
        self.reset = self._db.reset
        self._unknown_until: dict[str, float] = {}
        self._loaded_at = float("-inf")

    def load_all(self) -> None:
        rows = self._db.get().execute(
            "SELECT device_id, kind, family, city, gateway_id, decommissioned_at IS NOT NULL FROM ioc.devices"
        ).fetchall()
        self.clear()
        self._unknown_until.clear()
        for device_id, kind, family, city, gateway, gone in rows:
            self[device_id] = DeviceInfo(kind, family, city, gateway, gone)
        self._loaded_at = time.monotonic()

    def top_up(self, device_ids: Iterable[str]) -> None:
        """Look up, in one query, the ids not cached and not recently found missing."""
        now = time.monotonic()
        if now - self._loaded_at > RELOAD_S:
            self.load_all()
        wanted = {d for d in device_ids if d not in self and self._unknown_until.get(d, 0.0) <= now}
        if not wanted:
            return
        rows = self._db.get().execute(
            "SELECT device_id, kind, family, city, gateway_id, decommissioned_at IS NOT NULL FROM ioc.devices"
            " WHERE device_id = ANY(%s)",
            (list(wanted),),
        ).fetchall()
        for device_id, kind, family, city, gateway, gone in rows:
            self[device_id] = DeviceInfo(kind, family, city, gateway, gone)
            wanted.discard(device_id)
        for device_id in wanted:
            self._unknown_until[device_id] = now + NEGATIVE_TTL_S
