"""Scenarios: declarative fault and event files (``simulators/scenarios/*.json``) resolved against a fleet.

A scenario file::

    {
      "name": "cabinet-trip",
      "description": "one line for `ioc sim scenarios`",
      "effects": [
        {"type": "cabinet_trip", "at": "20m", "duration": "40m", "select": {"kind": "cabinet", "count": 1}}
      ]
    }

``at`` is an offset from the run start (``--scenario NAME@2h`` moves the whole scenario so that its first
effect starts 2 h into the run). ``select`` picks devices in fleet order: ``device_id`` (a list), ``kind``,
``site`` (a list of street/site names), ``ward``, ``dma`` (a DMA name, or ``dma_index``: the n-th DMA of the
fleet), ``skip`` and ``count``. ``params`` are effect-specific. Effect types:

==================  ==============================================================================
cabinet_trip        the cabinet's feeder trips: its lamps report off/0 W, go ``offline``, then return
gateway_outage      the gateway goes ``offline``; its devices buffer and back-fill one batch each on return
water_burst         main burst in ONE DMA: pressure drop and flow spike at its network points, ``burst``
flood               heavy rain (``params.rain_mm_per_h``) over the city; the Nậm Rốm rises, ``flood`` events
stuck_sensor        the device repeats the reading it had at the start of the window
drift_sensor        ``params.field`` drifts by ``params.per_hour`` per hour
clock_skew          timestamps shifted by ``params.offset`` (e.g. 400d: far future; ingest rejects them)
malformed_burst     ``params.count`` payloads that do not parse or validate, spread over the window
festival_jam        counters on ``select.site`` streets: congested, slow, high occupancy, ``congestion`` events
phase_loss          one phase (``params.phase``) of a cabinet drops: 0 V on it, its lamps go dark and ``offline``
==================  ==============================================================================
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ioc.registry import Device
from simulators.clock import parse_duration

EFFECT_TYPES = frozenset({
    "cabinet_trip", "gateway_outage", "water_burst", "flood", "stuck_sensor", "drift_sensor", "clock_skew",
    "malformed_burst", "festival_jam", "phase_loss",
})
# Effects whose payloads are meant to be rejected by ingest.
INVALID_EFFECTS = frozenset({"clock_skew", "malformed_burst"})


class ScenarioError(ValueError):
    """A scenario file or reference that cannot be used; names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Effect:
    type: str
    start: int  # epoch seconds, sim time
    end: int
    targets: frozenset[str]
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def active(self, t: int) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    effects: tuple[dict[str, Any], ...]
    source: str = ""

    @property
    def invalid_by_design(self) -> bool:
        return any(e["type"] in INVALID_EFFECTS for e in self.effects)


def _load(text: str, source: str) -> Scenario:
    try:
        raw = json.loads(text)
        name, description, effects = raw["name"], raw["description"], raw["effects"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ScenarioError(f"{source}: not a scenario file ({exc})") from None
    for i, eff in enumerate(effects):
        if eff.get("type") not in EFFECT_TYPES:
            raise ScenarioError(f"{source}: effect {i} type {eff.get('type')!r} is not one of {sorted(EFFECT_TYPES)}")
        for key in ("at", "duration"):
            try:
                parse_duration(str(eff.get(key, "0")))
            except ValueError as exc:
                raise ScenarioError(f"{source}: effect {i} {key}: {exc}") from None
    return Scenario(name, description, tuple(effects), source)


def catalogue() -> dict[str, Scenario]:
    """The shipped scenarios by name."""
    out = {}
    for entry in sorted(resources.files("simulators.scenarios").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            sc = _load(entry.read_text(encoding="utf-8"), f"scenarios/{entry.name}")
            out[sc.name] = sc
    return out


def resolve_ref(ref: str) -> tuple[Scenario, float | None]:
    """``NAME``, ``NAME@OFFSET`` or a path to a scenario file → (scenario, start offset override in s)."""
    name, _, at = ref.partition("@")
    offset = parse_duration(at) if at else None
    shipped = catalogue()
    if name in shipped:
        return shipped[name], offset
    path = Path(name)
    if path.is_file():
        return _load(path.read_text(encoding="utf-8"), str(path)), offset
    raise ScenarioError(f"unknown scenario {name!r}; `ioc sim scenarios` lists: {', '.join(shipped)}")


def _select(fleet: Sequence[Device], sel: dict[str, Any]) -> list[str]:
    devices: Iterable[Device] = fleet
    if "device_id" in sel:
        wanted = set(sel["device_id"])
        devices = [d for d in devices if d.device_id in wanted]
    if "kind" in sel:
        kinds = {sel["kind"]} if isinstance(sel["kind"], str) else set(sel["kind"])
        devices = [d for d in devices if d.kind in kinds]
    if "site" in sel:
        sites = {sel["site"]} if isinstance(sel["site"], str) else set(sel["site"])
        devices = [d for d in devices if d.site in sites]
    if "ward" in sel:
        devices = [d for d in devices if d.ward == sel["ward"]]
    if "dma_index" in sel or "dma" in sel:
        dmas = sorted({str(d.metadata["dma"]) for d in fleet if "dma" in d.metadata})
        if not dmas:
            return []
        dma = sel.get("dma") or dmas[int(sel["dma_index"]) % len(dmas)]
        devices = [d for d in devices if d.metadata.get("dma") == dma]
    ids = [d.device_id for d in devices]
    skip = int(sel.get("skip", 0))
    count = sel.get("count")
    return ids[skip: skip + int(count)] if count is not None else ids[skip:]


@dataclass(slots=True)
class Plan:
    """Effects resolved to absolute times and device ids; what the device models consult."""

    effects: list[Effect] = field(default_factory=list)
    by_device: dict[str, list[Effect]] = field(default_factory=dict)

    def add(self, effect: Effect) -> None:
        self.effects.append(effect)
        for device_id in effect.targets:
            self.by_device.setdefault(device_id, []).append(effect)

    def of(self, device_id: str, kind: str | None = None) -> list[Effect]:
        found = self.by_device.get(device_id, [])
        return [e for e in found if kind is None or e.type == kind]

    def of_type(self, kind: str) -> list[Effect]:
        return [e for e in self.effects if e.type == kind]


def plan(fleet: Sequence[Device], start: int, refs: Iterable[str | tuple[Scenario, float | None]]) -> Plan:
    """Resolve scenario references (names, ``NAME@OFFSET``, paths) for a run starting at ``start``."""
    out = Plan()
    for ref in refs:
        sc, override = resolve_ref(ref) if isinstance(ref, str) else ref
        first = min((parse_duration(str(e.get("at", "0"))) for e in sc.effects), default=0.0)
        shift = (override - first) if override is not None else 0.0
        for eff in sc.effects:
            at = start + int(parse_duration(str(eff.get("at", "0"))) + shift)
            end = at + int(parse_duration(str(eff.get("duration", "1h"))))
            targets = frozenset(_select(fleet, eff.get("select", {})))
            out.add(Effect(eff["type"], at, end, targets, dict(eff.get("params", {}))))
    return out
