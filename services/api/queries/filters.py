"""Device selection shared by devices, latest readings, series and KPIs, and the derived device state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

# A device is "silent" when it has said nothing for longer than this many report intervals: one late or
# batched report is normal, two missed ones are not.
SILENT_FACTOR = 2
# Sandbox cities (replays, what-if runs) have slugs starting with this; left out unless a request names a city.
SANDBOX_PREFIX = "sim-"

# d = ioc.devices, s = ioc.device_state
STATE_SQL = sql.SQL(
    """CASE WHEN d.decommissioned_at IS NOT NULL THEN 'decommissioned'
            WHEN s.status = 'offline' THEN 'offline'
            WHEN s.last_seen IS NULL OR s.last_seen < now() - make_interval(secs => {} * d.report_interval_s)
                THEN 'silent'
            ELSE 'online' END"""
).format(sql.Literal(SILENT_FACTOR))


@dataclass(frozen=True)
class DeviceFilter:
    city: str | None = None
    ward: str | None = None
    family: str | None = None
    kind: str | None = None
    ids: tuple[str, ...] = ()
    parent: str | None = None  # cabinet of a lamp, or a DMA (site) of water devices
    status: str | None = None  # reported MQTT status: online / offline / unknown
    state: str | None = None  # derived: online / offline / silent / decommissioned
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    include_decommissioned: bool = True

    def where(self, params: dict[str, Any]) -> sql.Composable:
        """A WHERE clause over ``d`` (devices) and ``s`` (device_state); fills ``params``."""
        parts: list[sql.Composable] = []

        def add(clause: str, **values: Any) -> None:
            parts.append(sql.SQL(clause))
            params.update(values)

        if self.city is not None:
            add("d.city = %(f_city)s", f_city=self.city)
        else:
            add("d.city NOT LIKE %(f_sandbox)s", f_sandbox=SANDBOX_PREFIX + "%")
        if self.ward is not None:
            add("d.ward = %(f_ward)s", f_ward=self.ward)
        if self.family is not None:
            add("d.family = %(f_family)s", f_family=self.family)
        if self.kind is not None:
            add("d.kind = %(f_kind)s", f_kind=self.kind)
        if self.ids:
            add("d.device_id = ANY(%(f_ids)s)", f_ids=list(self.ids))
        if self.parent is not None:
            add("(d.parent_id = %(f_parent)s OR d.site = %(f_parent)s OR d.metadata->>'dma' = %(f_parent)s)",
                f_parent=self.parent)
        if self.status is not None:
            add("s.status = %(f_status)s", f_status=self.status)
        if self.state is not None:
            parts.append(sql.SQL("{} = %(f_state)s").format(STATE_SQL))
            params["f_state"] = self.state
        if self.bbox is not None:
            add("d.lon BETWEEN %(f_x0)s AND %(f_x1)s AND d.lat BETWEEN %(f_y0)s AND %(f_y1)s",
                f_x0=self.bbox[0], f_y0=self.bbox[1], f_x1=self.bbox[2], f_y1=self.bbox[3])
        if not self.include_decommissioned:
            add("d.decommissioned_at IS NULL")
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")
