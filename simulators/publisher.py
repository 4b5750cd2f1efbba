"""Publishing the fleet: live (paced by a sim clock at N×) and back-fill (hourly batches, as fast as acked).

Connections: a device behind a gateway publishes through its gateway's connection, which carries the
gateway's last will; every other device has its own connection with its own will. When that would exceed
``max_connections``, devices share pooled connections (no will: a pool stands for a network server).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ioc.contract.topics import topic_for
from ioc.registry import Device
from ioc.settings import MqttUrl
from simulators.clock import SimClock
from simulators.generator import Message, ScenarioRef, hourly_batches, stream
from simulators.mqtt import CONNECT_TIMEOUT_S, Connection, Link, MqttError, Will, start_all, totals
from simulators.wire import LeanConnection

if TYPE_CHECKING:
    from simulators.sandbox import Sandbox

# One connection per device for small fleets; beyond this, gateways and pools (a broker and a laptop
# are both happier with hundreds of sockets than with tens of thousands).
MAX_CONNECTIONS = 300
BACKFILL_CONNECTIONS = 4
# Wall seconds between progress callbacks.
PROGRESS_EVERY_S = 2.0


@dataclass(slots=True)
class PublishSummary:
    """What a run sent and what the broker acknowledged (PUBACK), per device family."""

    published: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    readings: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    connections: int = 0
    sim_start: int = 0
    sim_end: int = 0
    duration_s: float = 0.0
    complete: bool = True  # every publish acknowledged before the run closed

    @property
    def total_published(self) -> int:
        return sum(self.published.values())

    @property
    def total_acked(self) -> int:
        return sum(self.acked.values())

    @property
    def total_readings(self) -> int:
        return sum(self.readings.values())

    @property
    def readings_per_s(self) -> float:
        return self.total_readings / self.duration_s if self.duration_s > 0 else 0.0


Progress = Callable[[PublishSummary, float], None]  # (summary so far, sim time now)


LinkFactory = Callable[[MqttUrl, str, Will | None], Link]


def paho_link(url: MqttUrl, client_id: str, will: Will | None) -> Link:
    return Connection(url, client_id, will)


def lean_link(url: MqttUrl, client_id: str, will: Will | None) -> Link:
    return LeanConnection(url, client_id, will)


class Router:
    """Which connection each device publishes through (paho by default; the lean publisher for back-fills);
    with a sandbox, every topic (wills included) moves there."""

    def __init__(self, url: MqttUrl, fleet: Sequence[Device], max_connections: int, client_prefix: str,
                 sandbox: Sandbox | None = None, link: LinkFactory = paho_link) -> None:
        self.sandbox = sandbox
        owners: dict[str, Device | None] = {}
        by_id = {d.device_id: d for d in fleet}
        for d in fleet:
            owner = d.gateway_id or d.device_id
            owners.setdefault(owner, by_id.get(owner))
        self.connections: list[Link] = []
        self.route: dict[str, Link] = {}
        names = list(owners)
        pooled = len(names) > max_connections
        pool: list[Link] = []
        if pooled:
            pool = [link(url, f"{client_prefix}pool-{i:03d}", None) for i in range(max_connections)]
            self.connections = pool
        conn_of: dict[str, Link] = {}
        for i, owner in enumerate(names):
            if pooled:
                conn_of[owner] = pool[i % max_connections]
            else:
                dev = owners[owner]
                will = Will(self.topic(topic_for(dev.city, dev.family, dev.device_id, "status"))) if dev else None
                conn = link(url, f"{client_prefix}{owner}", will)
                self.connections.append(conn)
                conn_of[owner] = conn
        for d in fleet:
            self.route[d.device_id] = conn_of[d.gateway_id or d.device_id]

    def topic(self, topic: str) -> str:
        if self.sandbox is None:
            return topic
        moved = self.sandbox.topic(topic)
        assert moved is not None, topic  # the generator only makes topics of the contract's layout
        return moved

    def publish(self, msg: Message) -> None:
        self.route[msg.device_id].publish(self.topic(msg.topic), msg.payload, msg.retain, msg.family, msg.qos)

    def status(self, device: Device, status: bytes) -> None:
        """Retained, as the contract wants of a device (in a sandbox, on the sandbox's topic)."""
        topic = self.topic(topic_for(device.city, device.family, device.device_id, "status"))
        self.route[device.device_id].publish(topic, status, True, device.family)


def _finish(router: Router, summary: PublishSummary, wall0: float, drain_timeout: float) -> None:
    deadline = time.monotonic() + drain_timeout
    complete = all(c.drain(max(0.0, deadline - time.monotonic())) for c in router.connections)
    for c in router.connections:
        c.stop()
    summary.published, summary.acked = totals(router.connections)
    summary.duration_s = time.monotonic() - wall0
    summary.complete = complete


def publish_fleet(fleet: Sequence[Device], url: MqttUrl, *, seed: int, start: int, duration_s: float,
                  speed: float = 1.0, scenarios: Iterable[ScenarioRef] = (), max_connections: int = MAX_CONNECTIONS,
                  client_prefix: str = "ioc-sim-", offline_at_end: bool = True, progress: Progress | None = None,
                  drain_timeout: float = 60.0, connect_timeout: float = CONNECT_TIMEOUT_S,
                  sandbox: Sandbox | None = None) -> PublishSummary:
    """Publish the fleet live for ``duration_s`` of sim time at ``speed``× (0: as fast as acked).

    Every device first publishes ``online`` (retained); at the end ``offline`` (retained) unless told not to,
    as a clean disconnect does not fire the will. With ``sandbox``, under the sandbox's city and ids (payloads
    are the same as the live city's for the same seed).
    """
    end = start + int(duration_s)
    router = Router(url, fleet, max_connections, client_prefix, sandbox)
    summary = PublishSummary(connections=len(router.connections), sim_start=start, sim_end=end)
    start_all(router.connections, connect_timeout)
    wall0 = time.monotonic()
    next_progress = wall0 + PROGRESS_EVERY_S
    messages = stream(fleet, seed, start, end, scenarios, statuses=False)
    clock = SimClock(start, speed if speed > 0 else 1.0)
    try:
        for d in fleet:  # retained `online` first; the sim clock starts once they are all out
            router.status(d, b"online")
            summary.messages += 1
        clock.begin()
        for msg in messages:
            if speed > 0:
                delay = clock.wall_delay(msg.t)
                while delay > 0:
                    time.sleep(min(delay, 0.5))
                    if progress and time.monotonic() >= next_progress:
                        next_progress = time.monotonic() + PROGRESS_EVERY_S
                        _report(router, summary, progress, clock.now())
                    delay = clock.wall_delay(msg.t)
            router.publish(msg)
            summary.messages += 1
            if msg.readings:
                summary.readings[msg.family] += msg.readings
            if progress and time.monotonic() >= next_progress:
                next_progress = time.monotonic() + PROGRESS_EVERY_S
                _report(router, summary, progress, msg.t)
        if offline_at_end:
            for d in fleet:
                router.status(d, b"offline")
                summary.messages += 1
    finally:
        _finish(router, summary, wall0, drain_timeout)
    return summary


def _report(router: Router, summary: PublishSummary, progress: Progress, sim_now: float) -> None:
    summary.published, summary.acked = totals(router.connections)
    progress(summary, sim_now)


def backfill(fleet: Sequence[Device], url: MqttUrl | None, *, seed: int, start: int, end: int,
             scenarios: Iterable[ScenarioRef] = (), batch_s: int = 3600, connections: int = BACKFILL_CONNECTIONS,
             client_prefix: str = "ioc-sim-backfill-", progress: Progress | None = None,
             drain_timeout: float = 120.0, processes: int = 1, sandbox: Sandbox | None = None) -> PublishSummary:
    """Generate every reading in [start, end) and publish one array per device, channel and ``batch_s``.

    ``url=None`` is a dry run: generate and encode, publish nothing (measures the generator).
    ``processes`` > 1 splits the devices over that many forked processes, each with its own connections
    (``connections`` each); their summaries are added up, so every publish is still counted by its PUBACK.
    """
    refs = list(scenarios)
    if processes > 1:
        return _backfill_parallel(fleet, url, seed=seed, start=start, end=end, scenarios=refs, batch_s=batch_s,
                                  connections=connections, client_prefix=client_prefix, progress=progress,
                                  drain_timeout=drain_timeout, processes=processes, sandbox=sandbox)
    return _backfill_part(fleet, url, seed=seed, start=start, end=end, scenarios=refs, batch_s=batch_s,
                          connections=connections, client_prefix=client_prefix, progress=progress,
                          drain_timeout=drain_timeout, part=(0, 1), sandbox=sandbox)


def _backfill_part(fleet: Sequence[Device], url: MqttUrl | None, *, seed: int, start: int, end: int,
                   scenarios: list[ScenarioRef], batch_s: int, connections: int, client_prefix: str,
                   progress: Progress | None, drain_timeout: float, part: tuple[int, int],
                   sandbox: Sandbox | None = None) -> PublishSummary:
    summary = PublishSummary(sim_start=start, sim_end=end)
    router: Router | None = None
    if url is not None:
        router = Router(url, fleet, connections, client_prefix, sandbox, lean_link)
        summary.connections = len(router.connections)
        start_all(router.connections)
    wall0 = time.monotonic()
    sim_t = start
    try:
        for batch in hourly_batches(fleet, seed, start, end, scenarios, window_s=batch_s, part=part):
            for msg in batch:
                if router is not None:
                    router.publish(msg)
                else:
                    summary.published[msg.family] += 1
                summary.messages += 1
                if msg.readings:
                    summary.readings[msg.family] += msg.readings
            sim_t = min(sim_t + batch_s, end)
            summary.duration_s = time.monotonic() - wall0
            if progress:
                if router is not None:
                    summary.published, summary.acked = totals(router.connections)
                progress(summary, sim_t)
    finally:
        if router is not None:
            _finish(router, summary, wall0, drain_timeout)
        else:
            summary.duration_s = time.monotonic() - wall0
    return summary


# -- parallel back-fill: forked workers, each a part of the fleet over its own connections ----------------

_Update = tuple[str, int, PublishSummary, float, str | None]  # (kind, worker, summary so far, sim time, error)


def _worker(k: int, n: int, fleet: Sequence[Device], url: MqttUrl | None, kwargs: dict[str, Any],
            updates: Any) -> None:
    def report(s: PublishSummary, sim_t: float) -> None:
        updates.put(("progress", k, s, sim_t, None))

    try:
        summary = _backfill_part(fleet, url, part=(k, n), progress=report,
                                 client_prefix=f"{kwargs.pop('client_prefix')}{k}-", **kwargs)
    except Exception as exc:  # reported to the parent, which raises it there
        updates.put(("failed", k, PublishSummary(), 0.0, f"{type(exc).__name__}: {exc}"))
        return
    updates.put(("done", k, summary, float(summary.sim_end), None))


def _backfill_parallel(fleet: Sequence[Device], url: MqttUrl | None, *, processes: int, start: int, end: int,
                       progress: Progress | None, **kwargs: Any) -> PublishSummary:
    ctx = multiprocessing.get_context("fork")  # the fleet and scenarios are inherited, not pickled
    updates = ctx.Queue()
    kwargs.update(start=start, end=end)
    workers = [ctx.Process(target=_worker, args=(k, processes, fleet, url, dict(kwargs), updates),
                           name=f"backfill-{k}", daemon=True) for k in range(processes)]
    wall0 = time.monotonic()
    for w in workers:
        w.start()
    latest: dict[int, PublishSummary] = {}
    sim_at: dict[int, float] = {}
    done: set[int] = set()
    error: str | None = None
    try:
        while len(done) < processes and error is None:
            try:
                kind, k, part_summary, sim_t, err = updates.get(timeout=1.0)
            except queue.Empty:
                dead = [w for i, w in enumerate(workers) if i not in done and not w.is_alive()]
                if dead:
                    error = f"back-fill worker {dead[0].name} exited with code {dead[0].exitcode}"
                continue
            if kind == "failed":
                error = err
                continue
            latest[k], sim_at[k] = part_summary, sim_t
            if kind == "done":
                done.add(k)
            if progress:
                progress(_sum(latest.values(), start, end, wall0), min(sim_at.get(i, start) for i in range(processes)))
    finally:
        for w in workers:
            w.join(timeout=5.0 if error is None else 0.1)
            if w.is_alive():
                w.kill()
                w.join()
    if error is not None:
        raise MqttError(error)
    return _sum(latest.values(), start, end, wall0)


def _sum(parts: Iterable[PublishSummary], start: int, end: int, wall0: float) -> PublishSummary:
    total = PublishSummary(sim_start=start, sim_end=end, duration_s=time.monotonic() - wall0)
    for p in parts:
        total.published.update(p.published)
        total.acked.update(p.acked)
        total.readings.update(p.readings)
        total.messages += p.messages
        total.connections += p.connections
        total.complete &= p.complete
    return total
