"""The simulated fleet: a deterministic device list built from the versioned city file.

``simulators/data/dien-bien-phu.json`` holds the place (wards, named streets as polylines, the Nậm Rốm,
intersections, station sites, festival calendar). :func:`build_fleet` turns it into registry records
(:class:`ioc.registry.Device`, the fleet-file format that ``ioc devices import`` reads) for a size:

- ``smoke``: ≈200 devices, every kind present; lamps, cabinets, points, counters and stations connect
  directly; household meters sit behind LoRaWAN gateways.
- ``district``: ≈4 000 devices; ``city``: ≈40 000 (15 000 lamps under 300 cabinets, 25 000 meters in 100
  district metered areas with 3 network points each, 60 counters of 2–6 lanes, 40 stations incl. river gauges).
- an integer N: the city's proportions scaled to about N devices.

Above 300 devices every lighting and water device is grouped behind a gateway, so a live run needs a
few hundred MQTT connections, not tens of thousands.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from ioc.registry import Device, read_devices
from simulators.rng import stable_seed

CITY_FILE = "dien-bien-phu.json"
# Fleets larger than this group lighting and water behind gateways (one connection per gateway).
DIRECT_CONNECTION_LIMIT = 300
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class FleetSpec:
    cabinets: int
    lamps_per_cabinet: int
    dmas: int
    meters_per_dma: int
    points_per_dma: int
    counters: int
    air_quality: int
    noise: int
    weather: int
    river_gauges: int
    cabinets_per_gateway: int = 5  # a lighting gateway (e.g. a LoRaWAN concentrator) serves ~250 devices
    dmas_per_gateway: int = 2  # a water gateway serves ~500 meters

    @property
    def total(self) -> int:
        lighting = self.cabinets * (1 + self.lamps_per_cabinet)
        water = self.dmas * (self.meters_per_dma + self.points_per_dma)
        env = self.air_quality + self.noise + self.weather + self.river_gauges
        return lighting + water + self.counters + env + self.gateways

    @property
    def gateways(self) -> int:
        lighting = math.ceil(self.cabinets / self.cabinets_per_gateway) if self.grouped else 0
        return lighting + math.ceil(self.dmas / self.dmas_per_gateway)

    @property
    def grouped(self) -> bool:
        """Lighting and network points behind gateways (meters are always: they are LoRaWAN)."""
        direct = self.cabinets * (1 + self.lamps_per_cabinet) + self.dmas * self.points_per_dma
        return direct + self.counters + 40 > DIRECT_CONNECTION_LIMIT


SIZES: dict[str, FleetSpec] = {
    "smoke": FleetSpec(4, 24, 2, 40, 2, 6, 2, 2, 2, 2, cabinets_per_gateway=4, dmas_per_gateway=1),
    "district": FleetSpec(30, 50, 10, 250, 3, 20, 4, 3, 3, 3),
    "city": FleetSpec(300, 50, 100, 250, 3, 60, 12, 10, 8, 10),
}


def spec_for(size: str | int) -> FleetSpec:
    if isinstance(size, str) and size in SIZES:
        return SIZES[size]
    try:
        n = int(size)
    except ValueError:
        raise ValueError(f"fleet size {size!r} is not one of {', '.join(SIZES)} or a number") from None
    if n < 50:
        raise ValueError("a numeric fleet size must be at least 50 devices")
    city = SIZES["city"]
    f = n / city.total
    # Small fleets keep the city's mix (≈37 % lamps, ≈61 % meters) with smaller cabinets and DMAs.
    lamps = city.lamps_per_cabinet if f >= 0.05 else 20
    meters = city.meters_per_dma if f >= 0.05 else 30
    return FleetSpec(
        cabinets=max(1, round(n * 0.37 / (lamps + 1))),
        lamps_per_cabinet=lamps,
        dmas=max(1, round(n * 0.62 / (meters + city.points_per_dma))),
        meters_per_dma=meters,
        points_per_dma=city.points_per_dma,
        counters=max(2, round(city.counters * f)),
        air_quality=max(1, round(city.air_quality * f)),
        noise=max(1, round(city.noise * f)),
        weather=max(1, round(city.weather * f)),
        river_gauges=max(1, round(city.river_gauges * f)),
    )


# -- the place ----------------------------------------------------------------------------------------


@cache
def city_data() -> dict[str, Any]:
    """The city definition: ``IOC_SIM_CITY_FILE`` (a path) when set, else the shipped Điện Biên Phủ file.

    A second city (the province's other towns) is another file of the same shape: places, calendar,
    model parameters and calibration targets; no code changes.
    """
    path = os.environ.get("IOC_SIM_CITY_FILE")
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("simulators.data").joinpath(CITY_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _dist_m(a: Sequence[float], b: Sequence[float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    x = (lon2 - lon1) * math.cos((lat1 + lat2) / 2)
    return EARTH_RADIUS_M * math.hypot(x, lat2 - lat1)


@dataclass(slots=True)
class Polyline:
    name: str
    ward: str
    kind: str
    points: list[tuple[float, float]]
    cumulative: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cumulative = [0.0]
        for a, b in zip(self.points, self.points[1:], strict=False):
            self.cumulative.append(self.cumulative[-1] + _dist_m(a, b))

    @property
    def length_m(self) -> float:
        return self.cumulative[-1]

    def at(self, metres: float) -> tuple[float, float]:
        """The point ``metres`` along the line (wrapping past the end)."""
        metres %= max(self.length_m, 1.0)
        for i in range(1, len(self.cumulative)):
            if metres <= self.cumulative[i]:
                seg = self.cumulative[i] - self.cumulative[i - 1] or 1.0
                u = (metres - self.cumulative[i - 1]) / seg
                (a0, a1), (b0, b1) = self.points[i - 1], self.points[i]
                return a0 + (b0 - a0) * u, a1 + (b1 - a1) * u
        return self.points[-1]


def _offset(point: tuple[float, float], rng: random.Random, radius_m: float) -> tuple[float, float]:
    r = radius_m * math.sqrt(rng.random())
    theta = rng.random() * 2 * math.pi
    dlat = r * math.cos(theta) / 111_320.0
    dlon = r * math.sin(theta) / (111_320.0 * math.cos(math.radians(point[0])))
    return round(point[0] + dlat, 6), round(point[1] + dlon, 6)


def streets(rng: random.Random) -> list[Polyline]:
    """Named streets plus generated alleys (ngõ) around each ward centre, for the lamps of small streets."""
    data = city_data()
    out = [Polyline(s["name"], s["ward"], s["class"], [tuple(p) for p in s["points"]]) for s in data["streets"]]
    for ward in data["wards"]:
        for n in range(1, 5):
            start = _offset(tuple(ward["centre"]), rng, 600.0)
            end = _offset(start, rng, 350.0)
            out.append(Polyline(f"Ngõ {n}, {ward['name']}", ward["name"], "alley", [start, end]))
    return out


# -- building -------------------------------------------------------------------------------------------


def build_fleet(size: str | int, seed: int = 1, city: str | None = None) -> list[Device]:
    """The device list for a size; the same size and seed always give the same list.

    ``city`` overrides the slug in topics and records (default: the city file's, ``dien-bien-phu``).
    """
    spec = spec_for(size)
    rng = random.Random(stable_seed(seed, "fleet"))
    data = city_data()
    city = city or data["city"]
    lines = streets(rng)
    devices: list[dict[str, Any]] = []

    def add(device_id: str, family: str, kind: str, interval: int, *, ward: str | None, site: str | None,
            at: tuple[float, float] | None, gateway_id: str | None = None, parent_id: str | None = None,
            **metadata: Any) -> None:
        devices.append({
            "device_id": device_id, "family": family, "kind": kind, "city": city, "ward": ward, "site": site,
            "lat": at[0] if at else None, "lon": at[1] if at else None, "report_interval_s": interval,
            "gateway_id": gateway_id, "parent_id": parent_id, "metadata": metadata,
        })

    # Lighting: cabinets spread over named streets (60 %) and alleys; lamps every ~35 m along the street.
    named = [s for s in lines if s.kind != "alley"]
    alleys = [s for s in lines if s.kind == "alley"]
    for c in range(spec.cabinets):
        street = named[c % len(named)] if c % 5 < 3 else alleys[c % len(alleys)]
        gw = f"GW-L-{c // spec.cabinets_per_gateway + 1:03d}" if spec.grouped else None
        cab_id = f"CAB-{c + 1:04d}"
        start_m = rng.random() * street.length_m
        phase_w = {"R": 0.0, "S": 0.0, "T": 0.0}
        lamp_rows = []
        for k in range(spec.lamps_per_cabinet):
            roll = rng.random()
            # ≥ 35 % smart/energy-saving (DESIGN §2): smart LED 40 %, plain LED 30 %, solar 10 %, sodium 20 %.
            if roll < 0.40:
                lamp_type, rated, dimmable = "led-smart", rng.choice((60, 80, 100, 120)), True
            elif roll < 0.70:
                lamp_type, rated, dimmable = "led", rng.choice((60, 80, 100)), False
            elif roll < 0.80:
                lamp_type, rated, dimmable = "solar", rng.choice((30, 40, 60)), True
            else:
                lamp_type, rated, dimmable = "sodium", rng.choice((150, 250)), False
            phase = "RST"[k % 3]
            if lamp_type != "solar":  # solar lamps have their own panel and battery, not the cabinet's supply
                phase_w[phase] += rated
            at = _offset(street.at(start_m + 35.0 * k), rng, 4.0)
            lamp_rows.append((f"SL-{c + 1:04d}-{k + 1:03d}", at, lamp_type, rated, dimmable, phase))
        add(cab_id, "lighting", "cabinet", 900, ward=street.ward, site=street.name,
            at=_offset(street.at(start_m), rng, 8.0), gateway_id=gw, lamps=spec.lamps_per_cabinet,
            rated_w=phase_w, feeder=f"F{c % 4 + 1}", switch_offset_s=rng.randint(-240, 240))
        for lamp_id, at, lamp_type, rated, dimmable, phase in lamp_rows:
            add(lamp_id, "lighting", "streetlight", 900, ward=street.ward, site=street.name, at=at, gateway_id=gw,
                parent_id=cab_id, lamp_type=lamp_type, rated_w=rated, dimmable=dimmable, phase=phase)

    # Water: district metered areas (DMA) around the ward centres; meters hourly, network points every 5 min.
    wards = data["wards"]
    for d in range(spec.dmas):
        ward = wards[(d + 2) % len(wards)]  # start in Thanh An so even the smoke fleet spans all wards
        dma = f"DMA-{d + 1:03d}"
        centre = _offset(tuple(ward["centre"]), rng, 1200.0)
        gw = f"GW-W-{d // spec.dmas_per_gateway + 1:03d}"
        for p in range(spec.points_per_dma):
            role = "inlet" if p == 0 else "pressure"
            add(f"NP-{d + 1:03d}-{p + 1}", "water", "network_point", 300, ward=ward["name"], site=dma,
                at=_offset(centre, rng, 300.0), gateway_id=gw if spec.grouped else None, dma=dma, role=role,
                nominal_bar=round(2.5 + rng.random() * 1.5, 2), households=spec.meters_per_dma)
        for m in range(spec.meters_per_dma):
            add(f"WM-{d + 1:03d}-{m + 1:04d}", "water", "meter", 3600, ward=ward["name"], site=dma,
                at=_offset(centre, rng, 400.0), gateway_id=gw, dma=dma,
                daily_m3=round(0.25 + rng.random() * 0.6, 3), start_m3=round(50 + rng.random() * 900, 3))

    # Traffic: counters on the approaches of the named intersections, 2–6 lanes each.
    # Volumes, capacities and free speeds by street class come from the city file (models.traffic).
    crossings = data["intersections"]
    traffic = data["models"]["traffic"]
    for t in range(spec.counters):
        x = crossings[t % len(crossings)]
        street = next(s for s in named if s.name == x["street"])
        lanes = rng.choice((2, 2, 3, 4, 4, 6)) if street.kind not in ("walking", "local") else 2
        add(f"TC-{t + 1:03d}", "traffic", "counter", 60, ward=street.ward, site=street.name,
            at=_offset(tuple(x["at"]), rng, 40.0), intersection=x["name"], lanes=lanes, street_class=street.kind,
            # The class volume is for a 3-lane approach; wider approaches carry proportionally more.
            vehicles_per_day=round(traffic["vehicles_per_day"][street.kind] * (lanes / 3 if lanes > 2 else 0.8)),
            free_speed_kmh=traffic["free_speed_kmh"][street.kind],
            lane_capacity_per_min=traffic["lane_capacity_per_min"][street.kind])

    # Environment: stations at the named sites; river gauges spread along the Nậm Rốm from upstream.
    stations = data["stations"]
    for prefix, kind, count, interval in (("AQ", "air_quality", spec.air_quality, 300),
                                          ("NZ", "noise", spec.noise, 60),
                                          ("WX", "weather", spec.weather, 300)):
        for i in range(count):
            st = stations[i % len(stations)]
            add(f"{prefix}-{i + 1:02d}", "environment", kind, interval, ward=st["ward"], site=st["name"],
                at=_offset(tuple(st["at"]), rng, 60.0 if i >= len(stations) else 5.0))
    # River gauges report an absolute elevation (``datum``) against three alarm levels (báo động I/II/III),
    # which rules and panels read from ``metadata.alarm_levels_m``.
    river = data["river"]
    line = Polyline(river["name"], "", "river", [tuple(p) for p in river["points"]])
    for g in range(spec.river_gauges):
        frac = (g + 0.5) / spec.river_gauges
        km = frac * line.length_m / 1000
        zero = river["zero_m_upstream"] - river["zero_drop_m_per_km"] * km
        low = round(zero + river["low_water_depth_m"] + rng.random() * 0.2, 2)
        add(f"RG-{g + 1:02d}", "environment", "river_gauge", 300, ward=None, site=river["name"],
            at=line.at(frac * line.length_m), river_km=round(km, 2), datum=river["datum"],
            gauge_zero_m=round(zero, 2), low_water_m=low,
            alarm_levels_m=[round(zero + a, 2) for a in river["alarm_depth_m"]])

    # Gateways last: one record per gateway id used above.
    by_gw: dict[str, dict[str, Any]] = {}
    for dev in devices:
        gw = dev["gateway_id"]
        if gw and gw not in by_gw:
            by_gw[gw] = dev
    for gw, first in by_gw.items():
        add(gw, "gateway", "gateway", 300, ward=first["ward"], site=first["site"],
            at=(first["lat"], first["lon"]), network="LoRaWAN" if gw.startswith("GW-W") else "NB-IoT/LoRa")
    return [Device.model_validate(d) for d in devices]


def fleet_jsonl(devices: Iterable[Device]) -> bytes:
    return b"".join(orjson.dumps(d.model_dump()) + b"\n" for d in devices)


def write_fleet(devices: Iterable[Device], path: Path) -> int:
    data = list(devices)
    path.write_bytes(fleet_jsonl(data))
    return len(data)


def load_fleet(ref: str | Path, seed: int = 1, city: str | None = None) -> list[Device]:
    """A size name/number (generated) or a fleet file path."""
    text = str(ref)
    if isinstance(ref, str) and (ref in SIZES or ref.isdigit()):
        return build_fleet(ref if ref in SIZES else int(ref), seed, city)
    return list(read_devices(Path(text)))


def with_interval(devices: Iterable[Device], kind: str, seconds: int) -> list[Device]:
    """A copy of the fleet with ``kind`` reporting every ``seconds`` (tests, fast demos)."""
    return [replace_device(d, report_interval_s=seconds) if d.kind == kind else d for d in devices]


def replace_device(device: Device, **changes: Any) -> Device:
    return device.model_copy(update=changes)


