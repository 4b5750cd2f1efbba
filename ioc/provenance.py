"""Where a stored reading came from, sandboxes, and how far back readings are kept: one place for all three.

Every reading row carries ``provenance``:

- ``live``: a registered device of a real city, reading observed recently (within ``BACKFILL_AFTER``);
- ``backfill``: the same, but the reading is older than that when it reaches ingest (a gateway flushing its
  buffer, ``ioc sim backfill`` into a real city);
- ``simulated`` / ``replayed``: a device registered in a *sandbox* city (slug ``sim-…``), as the simulators
  register them (``metadata.provenance`` says which; ``simulated`` when it says nothing).

Ingest derives it from what a device cannot forge: the registry (a device may publish only under the city it
is registered in) and the age of the reading. A device can make its readings look *older* (backfill), never
simulated, replayed, or part of another city. Queries for a real city read ``live`` and ``backfill``
(``DEFAULT_PROVENANCES``); sandboxes are excluded by their city slug (``SANDBOX_CITY_PREFIX``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Literal

Provenance = Literal["live", "backfill", "simulated", "replayed"]
PROVENANCES: Final[tuple[Provenance, ...]] = ("live", "backfill", "simulated", "replayed")
# What a query about a real city returns unless asked otherwise.
DEFAULT_PROVENANCES: Final[tuple[Provenance, ...]] = ("live", "backfill")
SANDBOX_PROVENANCES: Final[tuple[Provenance, ...]] = ("simulated", "replayed")

# A sandbox is a city of its own whose slug starts with this; API, dashboards and alert rules leave such cities
# out unless asked for (SQL: ``city NOT LIKE 'sim-%'``).
SANDBOX_CITY_PREFIX: Final = "sim-"
# Sandbox devices get this prefix on their id, so they never collide with a live device (ioc.devices key).
SANDBOX_DEVICE_PREFIX: Final = "SIM-"

# Raw readings are kept this long (the TimescaleDB retention policy, migrations 0004 and 0012); ingest refuses
# older ones as ``beyond_retention`` on both storage paths rather than committing rows that would vanish.
RAW_RETENTION: Final = timedelta(days=400)
# A reading older than this when it reaches ingest is a back-fill, not live: devices report every 1–60 min and
# a live message crosses the broker in seconds, so an hour late is a buffer being flushed.
BACKFILL_AFTER: Final = timedelta(hours=1)


def is_sandbox(city: str) -> bool:
    return city.startswith(SANDBOX_CITY_PREFIX)


def sandbox_city(name: str) -> str:
    """``dien-bien-phu`` → ``sim-dien-bien-phu``; a name already prefixed is kept."""
    return name if is_sandbox(name) else SANDBOX_CITY_PREFIX + name


def sandbox_device_id(device_id: str) -> str:
    return device_id if device_id.startswith(SANDBOX_DEVICE_PREFIX) else SANDBOX_DEVICE_PREFIX + device_id


def device_provenance(city: str, declared: str | None) -> Provenance:
    """The provenance of a device's readings when not a back-fill: ``declared`` (the registry's
    ``metadata.provenance``) counts only inside a sandbox, so registry metadata cannot hide a real device."""
    if not is_sandbox(city):
        return "live"
    return "replayed" if declared == "replayed" else "simulated"
