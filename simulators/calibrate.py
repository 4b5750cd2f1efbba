"""The calibration report: a simulated year for a small fleet, each figure next to its target band.

The bands and their sources are data (``calibration`` in the city file), so a second city brings its own.
Each figure is measured on what devices actually send (telemetry and events from the generator), sampled
where a full year at full resolution would be slow: hourly readings for stations, gauges and meters, several
years for rain and river (normals are means), one day in ``TRAFFIC_SAMPLE_EVERY`` for the per-minute counters.

    ioc sim calibrate [--year 2026] [--seed 1]
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from ioc.registry import Device
from simulators.clock import DAY, OFFSET_S, TZ, parse_start
from simulators.fleet import build_fleet, city_data, replace_device
from simulators.generator import hourly_batches
from simulators.scenario import Plan
from simulators.world import World

# One day in this many for the per-minute traffic counters (a year at 1 min would take minutes).
TRAFFIC_SAMPLE_EVERY = 30
# Rain and river are compared with climate normals, which are multi-year means.
RAIN_YEARS = 10
RIVER_YEARS = 3
# Days of water and electricity readings (their models have no season beyond the calendar).
WATER_DAYS = 14
POWER_DAYS = 28
WET_SEASON = (5, 6, 7, 8, 9, 10)


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    band: tuple[float, float]
    source: str

    @property
    def ok(self) -> bool:
        return self.band[0] <= self.value <= self.band[1]


Telemetry = dict[str, list[dict[str, Any]]]


def _run(devices: Sequence[Device], seed: int, start: int, end: int) -> tuple[Telemetry, Telemetry]:
    """Every telemetry reading and event of ``devices`` in [start, end), by device id."""
    tele: Telemetry = defaultdict(list)
    events: Telemetry = defaultdict(list)
    for batch in hourly_batches(devices, seed, start, end, window_s=max(3600, end - start)):
        for m in batch:
            if m.channel in ("telemetry", "event"):
                doc = orjson.loads(m.payload)
                (tele if m.channel == "telemetry" else events)[m.device_id].extend(
                    doc if isinstance(doc, list) else [doc])
    return tele, events


def _hourly(devices: Iterable[Device]) -> list[Device]:
    return [replace_device(d, report_interval_s=3600) for d in devices]


def _year(year: int) -> tuple[int, int]:
    a = int(datetime(year, 1, 1, tzinfo=TZ).timestamp())
    return a, int(datetime(year + 1, 1, 1, tzinfo=TZ).timestamp())


def _day_of(r: dict[str, Any]) -> date:
    return date.fromisoformat(str(r["dateObserved"])[:10])


def rain_figures(seed: int, year: int) -> dict[str, float]:
    """Rain as climate normals are: means over ``RAIN_YEARS`` simulated years (cheap: no devices needed)."""
    world = World(seed, Plan())
    per_year: dict[str, list[float]] = defaultdict(list)
    for y in range(year - RAIN_YEARS // 2, year - RAIN_YEARS // 2 + RAIN_YEARS):
        a, b = _year(y)
        first, last = (a + OFFSET_S) // DAY, (b + OFFSET_S) // DAY
        days = {d: world.daily_rain(d) for d in range(first, last)}
        july = [d for d in days if date.fromordinal(719_163 + d).month == 7]
        per_year["annual rain (mm)"].append(sum(days.values()))
        per_year["July rain (mm)"].append(sum(days[d] for d in july))
        per_year["July rain days"].append(sum(1 for d in july if days[d] >= 0.1))
        per_year["rain days per year"].append(sum(1 for v in days.values() if v >= 0.1))
        per_year["max hourly rain (mm/h)"].append(max(world.rain_rate(h) for h in range(a // 3600, b // 3600)))
    return {k: statistics.mean(v) for k, v in per_year.items()}


def river_figures(fleet: Sequence[Device], seed: int, year: int) -> dict[str, float]:
    """BĐ I crossings (``flood`` warnings) per gauge and wet season, from hourly readings of ``RIVER_YEARS``."""
    gauges = _hourly(d for d in fleet if d.kind == "river_gauge")
    counts = []
    for y in range(year - RIVER_YEARS // 2, year - RIVER_YEARS // 2 + RIVER_YEARS):
        a, b = _year(y)
        _, events = _run(gauges, seed, a, b)
        counts += [sum(1 for e in events[g.device_id] if e["eventType"] == "flood" and e["severity"] != "info"
                       and e.get("data", {}).get("alarm_level") == 1 and _day_of(e).month in WET_SEASON)
                   for g in gauges]
    return {"river BĐ I events per wet season": statistics.mean(counts)}


def air_figures(fleet: Sequence[Device], seed: int, year: int) -> dict[str, float]:
    stations = _hourly(d for d in fleet if d.kind == "air_quality")
    a, b = _year(year)
    tele, _ = _run(stations, seed, a, b)
    above: list[int] = []
    above_march: list[int] = []
    peak = 0.0
    for s in stations:
        by_day: dict[date, list[float]] = defaultdict(list)
        for r in tele[s.device_id]:
            by_day[_day_of(r)].append(r["pm25"])
            peak = max(peak, r["pm25"])
        means = {d: statistics.mean(v) for d, v in by_day.items()}
        above.append(sum(1 for v in means.values() if v > 50.0))
        above_march.append(sum(1 for d, v in means.items() if v > 50.0 and d.month == 3))
    return {"PM2.5 days > 50 µg/m³ (year)": statistics.mean(above),
            "PM2.5 days > 50 µg/m³ (March)": statistics.mean(above_march),
            "PM2.5 max hourly (µg/m³)": peak}


def traffic_figures(fleet: Sequence[Device], seed: int, year: int) -> dict[str, float]:
    counters = [d for d in fleet if d.kind == "counter"]
    a, b = _year(year)
    classes: dict[str, int] = defaultdict(int)
    daily: dict[str, list[int]] = defaultdict(list)
    warnings = 0
    counter_days = 0
    for day in range(a, b - DAY + 1, TRAFFIC_SAMPLE_EVERY * DAY):
        tele, events = _run(counters, seed, day, day + DAY)
        for c in counters:
            rs = tele[c.device_id]
            daily[c.device_id].append(sum(r["intensity"] for r in rs))
            for r in rs:
                for k, v in r["vehicleCount"].items():
                    classes[k] += v
            warnings += sum(1 for e in events[c.device_id] if e["eventType"] == "congestion"
                            and e["severity"] == "warning")
            counter_days += 1
    total = sum(classes.values()) or 1
    main = [statistics.median(daily[c.device_id]) for c in counters
            if c.metadata.get("street_class") == "main"]
    return {
        "motorcycle share": classes["motorcycle"] / total,
        "bus share": classes["bus"] / total,
        "truck share": classes["truck"] / total,
        "bicycle share": classes["bicycle"] / total,
        "vehicles/day per main-street counter (median)": statistics.median(main) if main else 0.0,
        "congestion warnings per counter-day": warnings / max(counter_days, 1),
    }


COUNTERS = {"streetlight": "energyConsumed", "cabinet": "energyConsumed", "meter": "waterConsumption",
            "network_point": "waterConsumption"}


def continuity_figures(fleet: Sequence[Device], seed: int, year: int) -> dict[str, float]:
    """Counters that go down when a live run follows a one-day back-fill (separate runs, as in use)."""
    devices = [d for d in fleet if d.kind in COUNTERS]
    start = _year(year)[0] + 100 * DAY + 5 * 3600
    back, _ = _run(devices, seed, start, start + DAY)
    live, _ = _run(devices, seed, start + DAY, start + DAY + 3 * 3600)
    decreases = 0
    for d in devices:
        values = [r[COUNTERS[d.kind]] for r in back[d.device_id] + live[d.device_id] if COUNTERS[d.kind] in r]
        decreases += sum(1 for x, y in itertools.pairwise(values) if y < x)
    return {"counter decreases across back-fill then live": float(decreases)}


def water_figures(fleet: Sequence[Device], seed: int, year: int) -> dict[str, float]:
    devices = [d for d in fleet
               if d.kind == "meter" or (d.kind == "network_point" and d.metadata.get("role") == "inlet")]
    start = _year(year)[0] + 200 * DAY
    tele, _ = _run(devices, seed, start, start + WATER_DAYS * DAY)
    meters = [d for d in devices if d.kind == "meter"]
    zero = [sum(1 for r in tele[m.device_id] if r["flow"] == 0) / WATER_DAYS for m in meters
            if not any("leak" in r.get("alarms", ()) for r in tele[m.device_id])]
    shares = []
    for inlet in (d for d in devices if d.kind == "network_point"):
        dma = inlet.metadata["dma"]
        rs = tele[inlet.device_id]
        delivered = rs[-1]["waterConsumption"] - rs[0]["waterConsumption"]
        t0, t1 = rs[0]["dateObserved"], rs[-1]["dateObserved"]
        billed = 0.0
        for m in meters:
            if m.metadata.get("dma") == dma:
                mr = tele[m.device_id]
                billed += _interp(mr, t1) - _interp(mr, t0)
        shares.append((delivered - billed) / delivered)
    return {"household zero-flow hours per day": statistics.mean(zero), "DMA loss share": statistics.mean(shares)}


def _interp(readings: list[dict[str, Any]], stamp: str) -> float:
    """The register at ``stamp`` (linear between the hourly readings around it)."""
    t = parse_start(stamp)
    prev = readings[0]
    for r in readings:
        tr = parse_start(r["dateObserved"])
        if tr >= t:
            tp = parse_start(prev["dateObserved"])
            if tr == tp:
                return float(r["waterConsumption"])
            u = (t - tp) / (tr - tp)
            return float(prev["waterConsumption"] + u * (r["waterConsumption"] - prev["waterConsumption"]))
        prev = r
    return float(readings[-1]["waterConsumption"])


def power_figures(fleet: Sequence[Device], seed: int, year: int) -> dict[str, float]:
    cabinets = [d for d in fleet if d.kind == "cabinet"]
    start = _year(year)[0] + 30 * DAY
    tele, _ = _run(cabinets, seed, start, start + POWER_DAYS * DAY)
    volts = [v for c in cabinets for r in tele[c.device_id] for v in r["voltage"].values()]
    nominal = float(city_data()["models"]["power"]["nominal_v"])
    return {"cabinet voltage mean (V)": statistics.mean(volts),
            "cabinet readings above +5 %": sum(1 for v in volts if v > 1.05 * nominal) / len(volts),
            "cabinet readings below −10 % (sags)": sum(1 for v in volts if v < 0.9 * nominal) / len(volts)}


SECTIONS: tuple[Callable[..., dict[str, float]], ...] = (
    river_figures, air_figures, traffic_figures, continuity_figures, water_figures, power_figures)


def calibrate(year: int = 2026, seed: int = 1, fleet: Sequence[Device] | None = None) -> list[Figure]:
    """Every calibration figure of the city file, measured on a simulated ``year`` of a small fleet."""
    devices = list(fleet) if fleet is not None else build_fleet("smoke", seed)
    values = rain_figures(seed, year)
    for section in SECTIONS:
        values.update(section(devices, seed, year))
    out = []
    for target in city_data()["calibration"]:
        name = target["figure"]
        out.append(Figure(name, float(values[name]), (float(target["band"][0]), float(target["band"][1])),
                          str(target["source"])))
    return out
