"""The device-model skeleton: report slots with deterministic jitter, scheduled one-off messages,
and the scenario effects every kind shares (stuck/drifting sensor, wrong clock, malformed burst,
gateway outage with back-fill).

A model's :meth:`DeviceSim.emit_until` appends ``(t, index, channel, body)`` tuples in time order, where
``body`` is a dict or list of dicts (JSON), a ``str`` (status) or ``bytes`` (sent verbatim; malformed).
Bodies are plain dicts built in a fixed key order; pydantic stays out of the hot path.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from functools import partial
from typing import Any

from ioc.registry import Device
from simulators.clock import iso_local, parse_duration
from simulators.rng import mix, stable_seed
from simulators.scenario import Effect
from simulators.world import World

Body = dict[str, Any] | list[dict[str, Any]] | str | bytes
Emission = tuple[int, int, str, Body]
Pending = tuple[int, str, "Body | Callable[[], Body | None]"]

TELEMETRY, EVENT, STATUS = "telemetry", "event", "status"
# Own alarms that any device may raise now and then (a watchdog reboot); per reading.
REBOOT_PROBABILITY = 2e-5


class DeviceSim:
    """One simulated device. Subclasses implement :meth:`reading` (and may add scheduled messages)."""

    def __init__(self, device: Device, index: int, world: World, start: int) -> None:
        self.device = device
        self.index = index
        self.world = world
        self.interval = device.report_interval_s
        self.rng = random.Random(stable_seed(world.seed, device.device_id))
        key = stable_seed(world.seed, "slot", device.device_id)
        self._key = key & 0xFFFFFFFF
        self._phase = key % self.interval
        # Jitter ±5 % of the interval keeps slots in order and readings from landing on round minutes.
        self._jitter = max(1, self.interval // 20)
        self.slot = (start - self._phase) // self.interval - 1
        self.next_t = self._slot_time(self.slot)
        while self.next_t < start:
            self.slot += 1
            self.next_t = self._slot_time(self.slot)
        self.last_t = self.next_t - self.interval
        self.pending: list[Pending] = []
        effects = world.plan.of(device.device_id)
        self._stuck = [e for e in effects if e.type == "stuck_sensor"]
        self._drift = [e for e in effects if e.type == "drift_sensor"]
        self._skew = [(e, int(parse_duration(str(e.params.get("offset", "400d"))))) for e in effects
                      if e.type == "clock_skew"]
        self._snapshot: dict[int, Body] = {}
        self._outages = world.plan.of(device.gateway_id, "gateway_outage") if device.gateway_id else []
        self._buffers: dict[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for n, eff in enumerate(self._outages):
            tele: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            self._buffers[n] = (tele, events)
            # The gateway is back: each device flushes what it buffered as one batch per channel.
            self.schedule(eff.end, TELEMETRY, partial(_flush, tele))
            self.schedule(eff.end, EVENT, partial(_flush, events))
        self._plain = not (self._stuck or self._drift or self._outages)
        for eff in effects:
            if eff.type == "malformed_burst":
                self._schedule_malformed(eff)

    # -- time -----------------------------------------------------------------------------------------

    def _slot_time(self, k: int) -> int:
        j = mix(self._key, k) % (2 * self._jitter + 1) - self._jitter
        return int(k * self.interval + self._phase + j)

    def schedule(self, t: int, channel: str, body: Body | Callable[[], Body | None]) -> None:
        """Add a one-off message (kept in time order; equal times keep insertion order)."""
        bisect.insort(self.pending, (t, channel, body), key=lambda p: p[0])

    def stamp(self, t: int) -> str:
        for eff, offset in self._skew:
            if eff.active(t):
                return iso_local(t + offset)
        return iso_local(t)

    def event(self, t: int, event_type: str, severity: str, description: str | None = None,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"dateObserved": self.stamp(t), "eventType": event_type, "severity": severity}
        if description is not None:
            body["description"] = description
        if data is not None:
            body["data"] = data
        return body

    # -- the loop -------------------------------------------------------------------------------------

    def emit_until(self, end: int, out: list[Emission]) -> None:
        """Append everything this device sends in [previous end, ``end``) to ``out``, in time order."""
        pending = self.pending
        while True:
            tp = pending[0][0] if pending else end
            ts = self.next_t
            if tp <= ts and tp < end:
                t, channel, body = pending.pop(0)
                value = body() if callable(body) else body
                if value is not None:
                    out.append((t, self.index, channel, value))
            elif ts < end:
                self.slot += 1
                self.next_t = self._slot_time(self.slot)
                self._step(ts, out)
                self.last_t = ts
            else:
                return

    def _step(self, t: int, out: list[Emission]) -> None:
        produced: list[tuple[str, Body]] = []
        body = self.reading(t, produced)
        if self._plain:  # the common case: no scenario touches this device
            if body is not None:
                out.append((t, self.index, TELEMETRY, body))
            if produced:
                out.extend((t, self.index, channel, b) for channel, b in produced)
            if self.rng.random() < REBOOT_PROBABILITY:
                out.append((t, self.index, EVENT, self.event(t, "reboot", "info", "watchdog restart")))
            return
        if body is not None:
            body = self._apply_effects(t, body)
            produced.insert(0, (TELEMETRY, body))
        if self.rng.random() < REBOOT_PROBABILITY:
            produced.append((EVENT, self.event(t, "reboot", "info", "watchdog restart")))
        for channel, b in produced:
            buffered = self._buffer_for(t, channel)
            if buffered is not None:
                if isinstance(b, list):
                    buffered.extend(b)
                elif isinstance(b, dict):
                    buffered.append(b)
            else:
                out.append((t, self.index, channel, b))

    def _buffer_for(self, t: int, channel: str) -> list[dict[str, Any]] | None:
        for n, eff in enumerate(self._outages):
            if eff.active(t) and channel in (TELEMETRY, EVENT):
                tele, events = self._buffers[n]
                return tele if channel == TELEMETRY else events
        return None

    def reading(self, t: int, extra: list[tuple[str, Body]]) -> Body | None:
        """The telemetry body for slot time ``t`` (None: nothing sent); may append events to ``extra``."""
        raise NotImplementedError

    # -- shared effects -------------------------------------------------------------------------------

    def _apply_effects(self, t: int, body: Body) -> Body:
        for eff in self._stuck:
            if eff.active(t):
                key = eff.start
                frozen = self._snapshot.setdefault(key, body)
                body = _restamp(frozen, body)
        for eff in self._drift:
            if eff.active(t) and isinstance(body, dict):
                name = str(eff.params.get("field", ""))
                if isinstance(body.get(name), int | float):
                    hours = (t - eff.start) / 3600.0
                    body[name] = round(max(0.0, body[name] + float(eff.params.get("per_hour", 1.0)) * hours), 2)
        return body

    def _schedule_malformed(self, eff: Effect) -> None:
        count = int(eff.params.get("count", 20))
        span = max(1, eff.end - eff.start)
        for i in range(count):
            t = eff.start + span * i // count
            self.schedule(t, TELEMETRY, malformed(i, iso_local(t), self.device.kind))


def _flush(buffer: list[dict[str, Any]]) -> Body | None:
    """The readings buffered during a gateway outage as one batch (None: nothing to send)."""
    return list(buffer) or None


def _restamp(frozen: Body, current: Body) -> Body:
    """The frozen values with the current timestamps (a stuck sensor still has a running clock)."""
    if isinstance(frozen, dict) and isinstance(current, dict):
        return {**frozen, "dateObserved": current["dateObserved"]}
    if isinstance(frozen, list) and isinstance(current, list) and current:
        return [{**f, "dateObserved": current[0]["dateObserved"]} for f in frozen]
    return current


# A field of each kind that a sloppy integrator might send as a string.
_NUMERIC_FIELD = {
    "streetlight": "powerConsumption", "cabinet": "energyConsumed", "meter": "waterConsumption",
    "network_point": "pressure", "counter": "intensity", "air_quality": "pm25", "noise": "LAeq",
    "weather": "temperature", "river_gauge": "currentLevel",
}


def malformed(i: int, stamp: str, kind: str) -> bytes:
    """The i-th bad payload (cycling through the ways integrators get it wrong); none parses and validates."""
    field = _NUMERIC_FIELD.get(kind, "pm25")
    variants = (
        f'{{"dateObserved": "{stamp}", "{field}": 1'.encode(),  # truncated JSON
        b"\xff\xfe\x00garbage",  # not UTF-8, not JSON
        f'{{"dateObserved": "{stamp}", "{field}": "12.5"}}'.encode(),  # number sent as a string
        f'{{"dateObserved": "{stamp}", "{field}": 1, "firmwareBuild": "x"}}'.encode(),  # unknown field
        b"[]",  # empty batch
        f'{{"{field}": 3}}'.encode(),  # no timestamp
        f'{{"dateObserved": 0, "{field}": 3}}'.encode(),  # clock never set (1970)
        f'{{"dateObserved": "{stamp}", "{field}": -1e12}}'.encode(),  # far out of range
        b'"online"',  # a status string on the telemetry channel
    )
    return variants[i % len(variants)]
