"""Every fleet metric, defined once (name, labels, meaning), and the mapping from snapshot rows to series.

Cardinality at city size (≈40 000 devices): a few hundred area series (300 cabinets, 100 DMAs), ~150 critical
devices, tens of ward series. Never one series per lamp or meter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily

from services.fleet.query import Row


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    help: str
    labels: tuple[str, ...]

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


DEVICE = ("city", "ward", "family", "kind")
AREA = ("city", "ward", "area_type", "area")
CRITICAL = ("city", "ward", "area", "kind", "device", "site")
STATION = ("city", "ward", "area", "device", "site")

DEVICES = Spec("ioc_fleet_devices", "Registered devices by last reported status (online/offline/unknown)",
               (*DEVICE, "status"))
SILENT = Spec("ioc_fleet_devices_silent", "Devices silent: offline, or not heard for silent_factor × their report "
              "interval (never heard: not silent, status unknown)", DEVICE)
AREA_DEVICES = Spec("ioc_fleet_area_devices", "Devices in an area (area_type cabinet: its lamps and itself; "
                    "dma: its meters and network points)", AREA)
AREA_SILENT = Spec("ioc_fleet_area_silent_devices", "Silent devices in an area", AREA)
AREA_RATIO = Spec("ioc_fleet_area_silent_ratio", "Share of an area's devices that are silent (0–1)", AREA)
LAMPS_EXPECTED = Spec("ioc_fleet_lamps_expected_on", "Reporting (not silent) lamps that the dusk-to-dawn schedule "
                      "says should be on now (0 by day)", ("city", "ward"))
LAMPS_ON = Spec("ioc_fleet_lamps_reporting_on", "Reporting lamps whose newest reading is on or dimmed",
                ("city", "ward"))
SCHEDULE = Spec("ioc_fleet_lamp_schedule_on", "1 between civil dusk and civil dawn at the exporter's location", ())
CABINET_TRIPPED = Spec("ioc_fleet_cabinet_tripped", "1 while a lighting cabinet is tripped: a cabinetTrip event not "
                       "followed by powerRestored or a reading, or its newest reading has every phase below 50 V",
                       ("city", "ward", "area", "site"))
CRIT_AGE = Spec("ioc_fleet_critical_reading_age_seconds", "Age of a critical device's newest reading (river gauges, "
                "air-quality stations, DMA inlets)", CRITICAL)
CRIT_SILENT = Spec("ioc_fleet_critical_silent", "1 while a critical device is silent", CRITICAL)
RIVER_LEVEL = Spec("ioc_fleet_river_level_meters", "Newest water level of a river gauge (m, the gauge's datum)",
                   STATION)
RIVER_ALARM = Spec("ioc_fleet_river_alarm_level_meters", "A river gauge's alarm levels (báo động I/II/III: level "
                   "1/2/3) from device metadata alarm_levels_m", (*STATION, "level"))
PM25_MEAN = Spec("ioc_fleet_pm25_24h_mean_ugm3", "Mean PM2.5 over the last 24 h of an air-quality station (µg/m³; "
                 "QCVN 05:2023 24-h limit 50)", STATION)
PM25_SAMPLES = Spec("ioc_fleet_pm25_24h_samples", "Readings behind the 24-h PM2.5 mean", STATION)
DMA_PRESSURE = Spec("ioc_fleet_dma_pressure_ratio", "Lowest newest pressure of a DMA's reporting network points, as a "
                    "share of each point's nominal pressure", ("city", "ward", "area"))
DMA_FLOW = Spec("ioc_fleet_dma_inlet_flow_lph", "Newest inlet flow of a DMA (L/h)", ("city", "ward", "area"))
CONGESTED = Spec("ioc_fleet_intersection_congested_ratio", "Share of an intersection's lanes whose newest reading "
                 "says congested (0–1)", ("city", "ward", "area"))
SPEED = Spec("ioc_fleet_intersection_speed_kmh", "Mean of the lanes' newest average speeds at an intersection (km/h)",
             ("city", "ward", "area"))
LAST_SEEN_AGE = Spec("ioc_fleet_city_last_seen_age_seconds", "Seconds since ingest stored anything from a city",
                     ("city",))
DATABASE_UP = Spec("ioc_fleet_database_up", "1 when the last snapshot query succeeded", ())
SNAPSHOT_SECONDS = Spec("ioc_fleet_snapshot_duration_seconds", "Duration of the last snapshot query", ())
SNAPSHOT_TIME = Spec("ioc_fleet_snapshot_timestamp_seconds", "Unix time of the last successful snapshot", ())

ALL: tuple[Spec, ...] = (
    DEVICES, SILENT, AREA_DEVICES, AREA_SILENT, AREA_RATIO, LAMPS_EXPECTED, LAMPS_ON, SCHEDULE, CABINET_TRIPPED,
    CRIT_AGE, CRIT_SILENT, RIVER_LEVEL, RIVER_ALARM, PM25_MEAN, PM25_SAMPLES, DMA_PRESSURE, DMA_FLOW, CONGESTED,
    SPEED, LAST_SEEN_AGE, DATABASE_UP, SNAPSHOT_SECONDS, SNAPSHOT_TIME,
)


def data_families(rows: Iterable[Row], *, schedule_on: bool) -> list[GaugeMetricFamily]:
    """The data-derived families of one snapshot (every spec above but the exporter's own three)."""
    fams = {s.name: s.family() for s in ALL if s not in (DATABASE_UP, SNAPSHOT_SECONDS, SNAPSHOT_TIME)}
    silent: defaultdict[tuple[str, ...], float] = defaultdict(float)
    last_seen: dict[str, float] = {}

    def add(spec: Spec, labels: Sequence[str], value: float | None) -> None:
        if value is not None:
            fams[spec.name].add_metric(list(labels), value)

    for row in rows:
        labels, v1, v2 = row.labels, row.v1, row.v2
        match row.section:
            case "status":
                add(DEVICES, labels, v1)
                silent[tuple(labels[:4])] += v2 or 0.0
            case "area":
                add(AREA_DEVICES, labels, v1)
                add(AREA_SILENT, labels, v2)
                add(AREA_RATIO, labels, (v2 or 0.0) / v1 if v1 else None)
            case "lamps":
                add(LAMPS_ON, labels, v1)
                add(LAMPS_EXPECTED, labels, v2 if schedule_on else 0.0)
            case "cabinet":
                add(CABINET_TRIPPED, labels, v1)
            case "critical":
                add(CRIT_AGE, labels, v1)
                add(CRIT_SILENT, labels, v2)
            case "river":
                add(RIVER_LEVEL, labels, v1)
            case "river_alarm":
                add(RIVER_ALARM, labels, v1)
            case "pm25":
                add(PM25_MEAN, labels, v1)
                add(PM25_SAMPLES, labels, v2)
            case "dma":
                add(DMA_PRESSURE, labels, v1)
                add(DMA_FLOW, labels, v2)
            case "intersection":
                add(CONGESTED, labels, v1)
                add(SPEED, labels, v2)
            case "last_seen":  # per city/ward/family/kind/status: the city's figure is the youngest
                if v1 is not None:
                    last_seen[labels[0]] = min(v1, last_seen.get(labels[0], v1))
            case other:
                raise ValueError(f"snapshot section {other!r} has no metric")
    for key, count in silent.items():
        fams[SILENT.name].add_metric(list(key), count)
    for city, age in last_seen.items():
        fams[LAST_SEEN_AGE.name].add_metric([city], age)
    fams[SCHEDULE.name].add_metric([], 1.0 if schedule_on else 0.0)
    return list(fams.values())
