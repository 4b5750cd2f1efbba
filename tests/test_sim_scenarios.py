"""Each scenario leaves its signature in the generated stream (no broker needed)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import pytest

from ioc.registry import Device
from simulators.clock import parse_start
from simulators.fleet import build_fleet
from simulators.generator import Message, stream
from simulators.scenario import ScenarioError, catalogue, plan, resolve_ref

NIGHT = parse_start("2026-03-10T20:00:00")  # lamps burning
DAY = parse_start("2026-03-10T09:00:00")  # a Tuesday morning, not a festival day


@pytest.fixture(scope="module")
def smoke() -> list[Device]:
    return build_fleet("smoke", 1)


def readings(messages: list[Message], device_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.device_id == device_id and m.channel == "telemetry":
            doc = orjson.loads(m.payload)
            out.extend(doc if isinstance(doc, list) else [doc])
    return out


def events(messages: list[Message], event_type: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for m in messages:
        if m.channel == "event":
            doc = orjson.loads(m.payload)
            out += [(m.device_id, e) for e in (doc if isinstance(doc, list) else [doc]) if e["eventType"] == event_type]
    return out


def test_catalogue_lists_every_scenario_with_a_description() -> None:
    cat = catalogue()
    assert {"cabinet-trip", "gateway-outage", "water-burst", "nam-rom-flood", "stuck-sensor", "drifting-sensor",
            "wrong-clock", "malformed-burst", "festival-jam"} <= set(cat)
    assert all(sc.description and "\n" not in sc.description for sc in cat.values())


def test_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match="ioc sim scenarios"):
        resolve_ref("no-such-scenario")


def test_offset_override_moves_the_scenario(smoke: list[Device]) -> None:
    p = plan(smoke, NIGHT, ["cabinet-trip@2h"])
    assert p.effects[0].start == NIGHT + 7200


def test_cabinet_trip_darkens_its_lamps_only(smoke: list[Device]) -> None:
    msgs = list(stream(smoke, 1, NIGHT, NIGHT + 2 * 3600, ["cabinet-trip"]))
    eff = plan(smoke, NIGHT, ["cabinet-trip"]).effects[0]
    (cabinet,) = eff.targets
    lamps = [d.device_id for d in smoke if d.parent_id == cabinet and d.metadata["lamp_type"] != "solar"]
    solar = [d.device_id for d in smoke if d.parent_id == cabinet and d.metadata["lamp_type"] == "solar"]
    # Solar lamps have their own panel and battery: a feeder trip does not touch them.
    others = [d.device_id for d in smoke if d.kind == "streetlight" and d.device_id not in lamps]
    assert solar and lamps
    for lamp in lamps:
        during = [r for r in readings(msgs, lamp) if eff.start <= parse_start(r["dateObserved"]) < eff.end]
        assert during, lamp
        assert all(r["powerState"] == "off" and r["powerConsumption"] == 0 for r in during)
        status = [(m.t, m.payload) for m in msgs if m.device_id == lamp and m.channel == "status"]
        assert (eff.start, b"offline") in status and (eff.end, b"online") in status
        after = [r for r in readings(msgs, lamp) if parse_start(r["dateObserved"]) >= eff.end]
        assert after and all(r["powerState"] == "on" for r in after if r["status"] == "ok")
    cab = [r for r in readings(msgs, cabinet) if eff.start <= parse_start(r["dateObserved"]) < eff.end]
    assert cab and all(sum(r["activePower"].values()) == 0 for r in cab)
    assert [d for d, _ in events(msgs, "cabinetTrip")] == [cabinet]
    for lamp in others:
        assert not any(m.device_id == lamp and m.payload == b"offline" for m in msgs)
        during = [r for r in readings(msgs, lamp) if eff.active(parse_start(r["dateObserved"]))]
        assert during and all(r["powerState"] != "off" for r in during)


def test_phase_loss_darkens_the_lamps_of_one_phase(smoke: list[Device]) -> None:
    msgs = list(stream(smoke, 1, NIGHT, NIGHT + 2 * 3600, ["phase-loss"]))
    eff = plan(smoke, NIGHT, ["phase-loss"]).effects[0]
    (cabinet,) = eff.targets
    mains = [d for d in smoke if d.parent_id == cabinet and d.metadata["lamp_type"] != "solar"]
    for d in mains:
        during = [r for r in readings(msgs, d.device_id) if eff.active(parse_start(r["dateObserved"]))]
        offline = any(m.device_id == d.device_id and m.payload == b"offline" for m in msgs)
        assert offline == (d.metadata["phase"] == "S"), d.device_id
        if d.metadata["phase"] != "S":
            assert during and all(r["voltage"] > 180 for r in during)
    cab = [r for r in readings(msgs, cabinet) if eff.active(parse_start(r["dateObserved"]))]
    assert cab and all(r["voltage"]["S"] == 0 and r["voltage"]["R"] > 180 for r in cab)
    assert [d for d, _ in events(msgs, "phaseLoss")] == [cabinet]


def test_water_burst_hits_one_dma_only(smoke: list[Device]) -> None:
    msgs = list(stream(smoke, 1, DAY, DAY + 2 * 3600, ["water-burst"]))
    base = list(stream(smoke, 1, DAY, DAY + 2 * 3600))
    eff = plan(smoke, DAY, ["water-burst"]).effects[0]
    points = [d for d in smoke if d.kind == "network_point"]
    hit_dmas = set()
    for d in points:
        burst = [r["pressure"] for r in readings(msgs, d.device_id) if eff.active(parse_start(r["dateObserved"]))]
        normal = [r["pressure"] for r in readings(base, d.device_id) if eff.active(parse_start(r["dateObserved"]))]
        if max(burst) < 0.6 * min(normal):
            hit_dmas.add(d.metadata["dma"])
        else:
            assert burst == normal  # untouched DMA: identical data
    assert len(hit_dmas) == 1
    inlet = next(d for d in points if d.metadata["dma"] in hit_dmas and d.metadata["role"] == "inlet")
    flows = [(eff.active(parse_start(r["dateObserved"])), r["flow"]) for r in readings(msgs, inlet.device_id)]
    assert min(f for a, f in flows if a) > 2 * max(f for a, f in flows if not a)
    assert [d for d, _ in events(msgs, "burst")] == [inlet.device_id]


def test_flood_raises_the_river_after_rain(smoke: list[Device]) -> None:
    start = parse_start("2026-07-10T00:00:00")
    msgs = list(stream(smoke, 1, start, start + 12 * 3600, ["nam-rom-flood"]))
    base = list(stream(smoke, 1, start, start + 12 * 3600))
    for gauge in (d.device_id for d in smoke if d.kind == "river_gauge"):
        flood = [r["currentLevel"] for r in readings(msgs, gauge)]
        normal = [r["currentLevel"] for r in readings(base, gauge)]
        assert max(flood) > max(normal) + 2.0
        assert flood.index(max(flood)) > 12  # the peak comes hours after the rain starts
    rain = [r["precipitation"] for d in smoke if d.kind == "weather" for r in readings(msgs, d.device_id)]
    assert max(rain) >= round(40 * 300 / 3600, 2)
    assert events(msgs, "flood")


def test_festival_jam_congests_the_named_streets(smoke: list[Device]) -> None:
    msgs = list(stream(smoke, 1, DAY, DAY + 3 * 3600, ["festival-jam"]))
    eff = plan(smoke, DAY, ["festival-jam"]).effects[0]
    named = {"Võ Nguyên Giáp", "Đường 7-5"}
    by_site: dict[bool, list[dict[str, Any]]] = defaultdict(list)
    for d in smoke:
        if d.kind == "counter":
            during = [r for r in readings(msgs, d.device_id) if eff.active(parse_start(r["dateObserved"]))]
            by_site[d.site in named].extend(during)
            assert (d.device_id in eff.targets) == (d.site in named)
    jammed, free = by_site[True], by_site[False]
    assert jammed and free
    assert all(r["congested"] and r["averageVehicleSpeed"] <= 10 and r["occupancy"] >= 0.75 for r in jammed)
    assert sum(r["congested"] for r in free) < 0.5 * len(free)
    assert {d for d, e in events(msgs, "congestion") if e["severity"] == "warning"} >= set(eff.targets)


def test_gateway_outage_backfills_one_batch_per_device(smoke: list[Device]) -> None:
    msgs = list(stream(smoke, 1, DAY, DAY + 3600, ["gateway-outage"]))
    eff = plan(smoke, DAY, ["gateway-outage"]).effects[0]
    (gw,) = eff.targets
    behind = {d.device_id for d in smoke if d.gateway_id == gw}
    status = [(m.t, m.payload) for m in msgs if m.device_id == gw and m.channel == "status"]
    assert status == [(DAY, b"online"), (eff.start, b"offline"), (eff.end, b"online")]
    during = [m for m in msgs if m.device_id in behind and m.channel == "telemetry" and eff.active(m.t)]
    assert during == []
    flushed = [m for m in msgs if m.device_id in behind and m.channel == "telemetry" and m.t == eff.end]
    assert flushed
    for m in flushed:
        batch = orjson.loads(m.payload)
        assert isinstance(batch, list) and batch
        assert all(eff.start <= parse_start(r["dateObserved"]) < eff.end for r in batch)


def test_stuck_and_drifting_sensors(smoke: list[Device]) -> None:
    msgs = list(stream(smoke, 1, DAY, DAY + 4 * 3600, ["stuck-sensor", "drifting-sensor"]))
    p = plan(smoke, DAY, ["stuck-sensor", "drifting-sensor"])
    stuck, drift = p.effects
    (wx,) = stuck.targets
    values = [{k: v for k, v in r.items() if k != "dateObserved"} for r in readings(msgs, wx)
              if stuck.active(parse_start(r["dateObserved"]))]
    assert len(values) > 10 and all(v == values[0] for v in values)
    (aq,) = drift.targets
    base = {r["dateObserved"]: r["pm25"] for r in readings(list(stream(smoke, 1, DAY, DAY + 4 * 3600)), aq)}
    diffs = [r["pm25"] - base[r["dateObserved"]] for r in readings(msgs, aq)
             if drift.active(parse_start(r["dateObserved"]))]
    assert diffs[-1] > 20 and diffs == sorted(diffs)
