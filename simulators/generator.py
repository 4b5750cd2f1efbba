"""The payload generator: a pure function of (fleet, seed, scenarios, sim time window) → messages.

No broker, no clock, no I/O: :func:`stream` yields live-style messages (one reading per message, a batch
per counter: one reading per lane) in time order; :func:`hourly_batches` yields back-fill messages (one
JSON array per device, channel and hour). The same inputs give byte-identical output: every device has
its own ``random.Random`` seeded from a stable hash of (seed, device id), JSON is written by ``orjson`` from
dicts built in a fixed key order with rounded floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import orjson

from ioc.contract.topics import topic_for
from ioc.registry import Device
from simulators.devices import EVENT, STATUS, TELEMETRY, Body, DeviceSim, Emission, make_sim
from simulators.scenario import Plan, Scenario
from simulators.scenario import plan as make_plan
from simulators.world import World

QOS = 1
# Live generation works in windows of sim time: long enough to amortise the per-device loop,
# short enough that a 1× run does not hold minutes of messages.
LIVE_WINDOW_S = 30
BACKFILL_WINDOW_S = 3600
# Readings per back-fill message: ~100 KB of JSON, well under ingest's 256 KiB payload and 10 000-reading caps.
MAX_BATCH_READINGS = 500


class Message(NamedTuple):
    """One MQTT publish (a NamedTuple: millions are built during a back-fill)."""
    t: int  # sim time, epoch seconds
    topic: str
    payload: bytes
    qos: int
    retain: bool
    device_id: str
    family: str
    channel: str
    readings: int  # telemetry readings carried (0 for events, statuses, malformed payloads)


ScenarioRef = str | tuple[Scenario, float | None]


class Generator:
    """Device models for a fleet, advanced window by window. Use :func:`stream` or :func:`hourly_batches`."""

    def __init__(self, fleet: Sequence[Device], seed: int, start: int,
                 scenarios: Iterable[ScenarioRef] = (), plan: Plan | None = None, part: tuple[int, int] = (0, 1),
                 ) -> None:
        self.fleet = list(fleet)
        self.start = start
        self.plan = plan if plan is not None else make_plan(self.fleet, start, scenarios)
        self.world = World(seed, self.plan, self.fleet)
        # ``part`` (k, n): only every n-th device from the k-th (parallel back-fill); a device's messages
        # do not depend on which others are simulated, so the parts together are the whole, byte for byte.
        k, n = part
        self.sims: list[DeviceSim] = [make_sim(d, i, self.world, start) for i, d in enumerate(self.fleet)
                                      if i % n == k]
        self.topics = [{c: topic_for(d.city, d.family, d.device_id, c) for c in ("telemetry", "event", "status")}
                       for d in self.fleet]

    def window(self, end: int) -> list[Emission]:
        out: list[Emission] = []
        for sim in self.sims:
            sim.emit_until(end, out)
        out.sort(key=lambda e: (e[0], e[1]))
        return out

    def message(self, t: int, index: int, channel: str, body: Body) -> Message:
        device = self.fleet[index]
        readings = 0
        if isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = orjson.dumps(body)
            if channel == TELEMETRY:
                readings = len(body) if isinstance(body, list) else 1
        return Message(t, self.topics[index][channel], payload, QOS, channel == STATUS, device.device_id,
                       device.family, channel, readings)

    def statuses(self, t: int, value: str) -> Iterator[Message]:
        for i in range(len(self.fleet)):
            yield self.message(t, i, STATUS, value)


def stream(fleet: Sequence[Device], seed: int, start: int, end: int, scenarios: Iterable[ScenarioRef] = (),
           *, statuses: bool = True, window_s: int = LIVE_WINDOW_S) -> Iterator[Message]:
    """Every message the fleet sends in [start, end), in time order; ``online`` for all devices first.

    The device models are built before this returns (seconds for a city), so a caller can start its
    clock after calling it.
    """
    gen = Generator(fleet, seed, start, scenarios)

    def messages() -> Iterator[Message]:
        if statuses:
            yield from gen.statuses(start, "online")
        t = start
        while t < end:
            t = min(t + window_s, end)
            for e in gen.window(t):
                yield gen.message(*e)

    return messages()


def hourly_batches(fleet: Sequence[Device], seed: int, start: int, end: int,
                   scenarios: Iterable[ScenarioRef] = (), *, window_s: int = BACKFILL_WINDOW_S,
                   part: tuple[int, int] = (0, 1)) -> Iterator[list[Message]]:
    """Back-fill: per window (an hour), one telemetry array and one event array per device.

    Statuses are left out: they carry no timestamp, so a historical ``offline`` would be stored as now.
    Malformed payloads (a scenario) are passed through as they are. ``part`` (k, n) generates only every
    n-th device from the k-th (see :class:`Generator`).
    """
    gen = Generator(fleet, seed, start, scenarios, part=part)
    t = start
    buf: list[Emission] = []
    while t < end:
        w_end = min(t + window_s, end)
        batch: list[Message] = []
        for sim in gen.sims:  # device by device: no global sort needed for a back-fill
            buf.clear()
            sim.emit_until(w_end, buf)
            if not buf:
                continue
            tele: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for et, index, channel, body in buf:
                kind = type(body)  # exact types: the hot loop of a back-fill (millions of emissions)
                if kind is dict:
                    (tele if channel == TELEMETRY else events).append(body)  # type: ignore[arg-type]
                elif kind is list:
                    (tele if channel == TELEMETRY else events).extend(body)  # type: ignore[arg-type]
                elif channel != STATUS:
                    batch.append(gen.message(et, index, channel, body))
            for i in range(0, len(tele), MAX_BATCH_READINGS):
                batch.append(gen.message(buf[0][0], sim.index, TELEMETRY, tele[i:i + MAX_BATCH_READINGS]))
            for i in range(0, len(events), MAX_BATCH_READINGS):
                batch.append(gen.message(buf[0][0], sim.index, EVENT, events[i:i + MAX_BATCH_READINGS]))
        yield batch
        t = w_end
