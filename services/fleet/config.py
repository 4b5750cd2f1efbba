"""Fleet exporter settings (``IOC_FLEET_*`` on top of the shared ``IOC_*`` ones)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ioc.settings import CommonSettings


class FleetSettings(CommonSettings):
    fleet_metrics_host: str = "127.0.0.1"
    fleet_metrics_port: Annotated[int, Field(ge=1, le=65535)] = 9110
    # The snapshot is refreshed this often by a background thread and scrapes render the latest one: the query
    # costs the database once per interval however many scrapers there are (an HA pair, a human with curl), and a
    # scrape never waits for it. Keep it at or below the scrape interval (15 s). 0: query on every scrape.
    fleet_cache_s: Annotated[float, Field(ge=0, le=300)] = 10.0
    # A device is silent when it has not been heard for this many report intervals (one missed report is normal
    # radio loss; three in a row is not), or its last status message said offline.
    fleet_silent_factor: Annotated[float, Field(gt=1, le=100)] = 3.0
    # Lamps' newest readings are looked up this far back only (lamps report every 15 min: 20 min is one report
    # plus jitter, ~15 000 rows at city size); a lamp with no reading in it counts neither as on nor as expected.
    fleet_reading_window_s: Annotated[int, Field(ge=60, le=86_400)] = 1200
    # The snapshot query gives up after this (Prometheus' scrape timeout is 10 s by default).
    fleet_query_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    # Where dusk and dawn are computed for "lamps expected on" (civil twilight: sun 6° below the horizon, as the
    # cabinets switch). The province spans ~1° of longitude: ~4 min of dusk time, below the rules' `for:`.
    fleet_latitude: Annotated[float, Field(ge=-90, le=90)] = 21.386
    fleet_longitude: Annotated[float, Field(ge=-180, le=180)] = 103.017
