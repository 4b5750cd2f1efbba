"""Device models behave like the city: lamps follow the sun, counters only grow, daily and seasonal profiles."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any

import orjson
import pytest

from ioc.registry import Device
from simulators.clock import local_hour, parse_start
from simulators.fleet import build_fleet
from simulators.generator import hourly_batches


@pytest.fixture(scope="module")
def smoke() -> list[Device]:
    return build_fleet("smoke", 1)


@pytest.fixture(scope="module")
def march_day(smoke: list[Device]) -> dict[str, list[dict[str, Any]]]:
    """Every reading of a non-festival March Tuesday (plus the next morning), by device id."""
    start = parse_start("2026-03-10T00:00:00")
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for batch in hourly_batches(smoke, 1, start, start + 30 * 3600):
        for m in batch:
            if m.channel == "telemetry":
                out[m.device_id].extend(orjson.loads(m.payload))
    return out


def _hour(r: dict[str, Any]) -> float:
    return local_hour(parse_start(r["dateObserved"]))


def test_lamps_on_at_night_off_at_noon_dimmed_after_midnight(smoke: list[Device], march_day: Any) -> None:
    lamps = [d for d in smoke if d.kind == "streetlight"]
    for d in lamps:
        rs = march_day[d.device_id]
        noon = [r for r in rs if 10 <= _hour(r) <= 16]
        night = [r for r in rs if 20 <= _hour(r) <= 23]
        small_hours = [r for r in rs if 1 <= _hour(r) <= 4]
        assert noon and all(r["powerState"] == "off" and r["powerConsumption"] == 0 for r in noon)
        assert night and all(r["powerState"] == "on" for r in night if r["status"] == "ok")
        expected = "low" if d.metadata["dimmable"] else "on"
        assert small_hours and all(r["powerState"] == expected for r in small_hours if r["status"] == "ok")


def test_lamps_switch_near_dusk_and_dawn(smoke: list[Device], march_day: Any) -> None:
    # Dusk ≈ 18:39 and dawn ≈ 05:56 local in mid-March at 21.386 N 103.017 E (astral); cabinets ± 4 min.
    lamp = next(d for d in smoke if d.kind == "streetlight")
    rs = march_day[lamp.device_id]
    evening = [(_hour(r), r["powerState"]) for r in rs if 17 <= _hour(r) <= 20]
    first_on = min(h for h, s in evening if s != "off")
    assert 18.55 <= first_on <= 19.0


def test_energy_and_water_counters_never_decrease(smoke: list[Device], march_day: Any) -> None:
    checked = 0
    for d in smoke:
        field = {"streetlight": "energyConsumed", "cabinet": "energyConsumed", "meter": "waterConsumption"}.get(d.kind)
        if field is None:
            continue
        values = [r[field] for r in march_day[d.device_id]]
        assert values == sorted(values), d.device_id
        assert values[-1] > values[0] or (d.kind == "streetlight" and values)
        checked += 1
    assert checked > 150


def test_water_demand_peaks_morning_and_evening(smoke: list[Device], march_day: Any) -> None:
    inlets = [d for d in smoke if d.kind == "network_point" and d.metadata["role"] == "inlet"]
    flows: dict[int, list[float]] = defaultdict(list)
    for d in inlets:
        for r in march_day[d.device_id]:
            flows[int(_hour(r))].append(r["flow"])
    night, morning, evening = mean(flows[3]), mean(flows[7]), mean(flows[19])
    assert morning > 2.5 * night and evening > 2.5 * night


def test_traffic_rush_hour_busier_than_night(smoke: list[Device], march_day: Any) -> None:
    counters = [d for d in smoke if d.kind == "counter"]
    by_hour: dict[int, list[int]] = defaultdict(list)
    for d in counters:
        rs = march_day[d.device_id]
        assert {r["laneId"] for r in rs} == set(range(1, d.metadata["lanes"] + 1))
        for r in rs:
            by_hour[int(_hour(r))].append(r["intensity"])
    assert mean(by_hour[17]) > 5 * mean(by_hour[3])


def test_festival_evening_busier_than_ordinary_evening(smoke: list[Device]) -> None:
    def evening_traffic(day: str) -> float:
        start = parse_start(f"{day}T18:00:00")
        values = [r["intensity"] for b in hourly_batches(smoke, 1, start, start + 3600) for m in b
                  if m.channel == "telemetry" and m.family == "traffic" for r in orjson.loads(m.payload)]
        return float(mean(values))

    # 2026-05-07 (Victory Day) vs 2026-05-14, both Thursdays.
    assert evening_traffic("2026-05-07") > 1.3 * evening_traffic("2026-05-14")


def test_pm25_worse_in_burning_season_and_evening(smoke: list[Device]) -> None:
    def pm(day: str, hour: int) -> float:
        start = parse_start(f"{day}T{hour:02d}:00:00")
        return float(mean(r["pm25"] for b in hourly_batches(smoke, 1, start, start + 3600) for m in b
                          if m.channel == "telemetry" and m.device_id.startswith("AQ")
                          for r in orjson.loads(m.payload)))

    assert pm("2026-03-20", 20) > 2 * pm("2026-07-20", 20)
    assert pm("2026-03-20", 20) > 1.5 * pm("2026-03-20", 14)
