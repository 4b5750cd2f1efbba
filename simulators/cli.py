"""``ioc sim``: fleet files, live runs, back-fills, record/replay, the scenario catalogue and calibration."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ioc.provenance import Provenance
from ioc.registry import Device
from ioc.settings import CommonSettings, MqttUrl, load
from simulators.clock import iso_local, parse_duration, parse_start

if TYPE_CHECKING:
    from simulators.sandbox import Sandbox

app = typer.Typer(help="Simulated Điện Biên Phủ field devices, scenarios, record and replay.", no_args_is_help=True)
console = Console(stderr=False)

FleetOpt = Annotated[str, typer.Option("--fleet", help="smoke | district | city | a number | a fleet file")]
SeedOpt = Annotated[int, typer.Option("--seed", help="same seed + start → byte-identical payloads")]
ScenarioOpt = Annotated[list[str] | None, typer.Option(
    "--scenario", help="catalogue name, NAME@OFFSET (e.g. cabinet-trip@2h) or a scenario file; repeatable")]
SandboxOpt = Annotated[str | None, typer.Option(
    "--sandbox", help="publish into the sandbox city sim-NAME with SIM- device ids (registered in "
                      "IOC_DATABASE_URL), kept apart from the live city; see simulators/README.md")]


def _mqtt() -> MqttUrl:
    return load(CommonSettings).mqtt


def _fleet(ref: str, seed: int) -> list[Device]:
    from simulators.fleet import load_fleet

    try:
        return load_fleet(ref, seed, load(CommonSettings).city)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/] fleet {ref!r}: {exc}")
        raise typer.Exit(2) from None


def _sandbox(name: str | None, provenance: Provenance, devices: list[Device] | None = None) -> Sandbox | None:
    """The sandbox, with ``devices`` (a fleet) registered under it; exits 2 with a message when that fails."""
    from simulators.sandbox import Sandbox, SandboxError

    if name is None:
        return None
    try:
        sandbox = Sandbox.named(name, provenance)
        if devices is not None:
            n = sandbox.register(load(CommonSettings).database_url, [sandbox.device(d) for d in devices])
            console.print(f"sandbox {sandbox.city}: {n} {provenance} devices registered (ids SIM-…)")
    except (SandboxError, psycopg.Error) as exc:
        console.print(f"[red]error:[/] sandbox {name!r}: {str(exc).strip()}")
        raise typer.Exit(2) from None
    return sandbox


def _check_scenarios(refs: list[str]) -> None:
    from simulators.scenario import ScenarioError, resolve_ref

    for ref in refs:
        try:
            resolve_ref(ref)
        except (ScenarioError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None


def _families_table(title: str, published: dict[str, int], acked: dict[str, int], readings: dict[str, int]) -> Table:
    table = Table(title=title)
    for col in ("family", "published", "acknowledged", "readings"):
        table.add_column(col, justify="right" if col != "family" else "left")
    for fam in sorted(set(published) | set(acked) | set(readings)):
        table.add_row(fam, str(published.get(fam, 0)), str(acked.get(fam, 0)), str(readings.get(fam, 0)))
    table.add_row("total", str(sum(published.values())), str(sum(acked.values())), str(sum(readings.values())),
                  style="bold")
    return table


@app.command("fleet")
def fleet_cmd(
    out: Annotated[Path, typer.Option("--out", help="fleet file to write (.jsonl)")],
    size: Annotated[str, typer.Option("--size", help="smoke | district | city | a number of devices")] = "smoke",
    seed: SeedOpt = 1,
) -> None:
    """Write a deterministic fleet file for `ioc devices import` (city slug from IOC_CITY)."""
    from collections import Counter

    from simulators.fleet import build_fleet, write_fleet

    try:
        devices = build_fleet(size if not size.isdigit() else int(size), seed, load(CommonSettings).city)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    n = write_fleet(devices, out)
    kinds = Counter(d.kind for d in devices)
    console.print(f"wrote {n} devices to {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))


@app.command("scenarios")
def scenarios_cmd() -> None:
    """List the scenario catalogue."""
    from simulators.scenario import catalogue

    table = Table(title="ioc sim scenarios (use --scenario NAME or NAME@OFFSET)")
    table.add_column("name")
    table.add_column("description")
    for name, sc in catalogue().items():
        table.add_row(name, sc.description)
    console.print(table)


@app.command("run")
def run_cmd(
    fleet: FleetOpt = "smoke",
    speed: Annotated[float, typer.Option(help="sim seconds per wall second; 0 = as fast as acked")] = 1.0,
    start: Annotated[str | None, typer.Option(
        help="sim start, ISO (local time if no offset); default: now at 1×, else now minus --duration")] = None,
    duration: Annotated[str, typer.Option(help="sim time to run: 90s, 15m, 2h, 1d")] = "1h",
    scenario: ScenarioOpt = None,
    seed: SeedOpt = 1,
    max_connections: Annotated[int, typer.Option(help="above this, devices share pooled connections")] = 300,
    leave_online: Annotated[bool, typer.Option(help="do not publish 'offline' for every device at the end")] = False,
    sandbox: SandboxOpt = None,
) -> None:
    """Publish the fleet live (or N× accelerated) to IOC_MQTT_URL."""
    from simulators.mqtt import MqttError
    from simulators.publisher import PublishSummary, publish_fleet

    url = _mqtt()
    refs = scenario or []
    _check_scenarios(refs)
    devices = _fleet(fleet, seed)
    dur = parse_duration(duration)
    # An accelerated run from now would send readings from the future, which ingest rejects (> 5 min ahead);
    # by default it therefore ends at now.
    t0 = parse_start(start) if start is not None or speed == 1 else int(time.time() - dur)
    if speed != 1 and t0 + dur > time.time() + 300:
        console.print("[yellow]warning:[/] this run's sim time passes the wall clock; ingest rejects readings more "
                      "than 5 min in the future (give an earlier --start)")
    box = _sandbox(sandbox, "simulated", devices)
    console.print(f"{len(devices)} devices → {url.host}:{url.port}; sim {iso_local(t0)} + {duration} at "
                  f"{speed or 'max'}×; scenarios: {', '.join(refs) or 'none'}"
                  + (f"; sandbox {box.city}" if box else ""))

    def status(s: PublishSummary, sim_now: float) -> None:
        console.print(f"sim {iso_local(int(sim_now))}  published {s.total_published}  acked {s.total_acked}  "
                      f"readings {s.total_readings}")

    try:
        summary = publish_fleet(devices, url, seed=seed, start=t0, duration_s=dur, speed=speed, scenarios=refs,
                                max_connections=max_connections, offline_at_end=not leave_online, progress=status,
                                sandbox=box)
    except MqttError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(_families_table(
        f"run: {summary.connections} connections, {summary.duration_s:.1f} s wall", summary.published,
        summary.acked, summary.readings))
    if not summary.complete:
        console.print("[yellow]warning:[/] not every publish was acknowledged before the end")
        raise typer.Exit(1)


@app.command("backfill")
def backfill_cmd(
    fleet: FleetOpt = "city",
    start: Annotated[str, typer.Option(help="first day (local) or ISO date-time")] = "2026-03-14",
    days: Annotated[float, typer.Option(help="days to generate")] = 1.0,
    scenario: ScenarioOpt = None,
    seed: SeedOpt = 1,
    batch: Annotated[str, typer.Option(help="readings per message: one array per device and this period")] = "1h",
    connections: Annotated[int, typer.Option(help="MQTT connections to publish over (per process)")] = 4,
    processes: Annotated[int, typer.Option(
        min=1, help="generate and publish in this many processes, each a share of the devices")] = 2,
    dry_run: Annotated[bool, typer.Option(help="generate and encode only; publish nothing")] = False,
    sandbox: SandboxOpt = None,
) -> None:
    """Generate every reading of a period and publish hourly batches as fast as the broker acknowledges."""
    from simulators.mqtt import MqttError
    from simulators.publisher import PublishSummary
    from simulators.publisher import backfill as run_backfill

    refs = scenario or []
    _check_scenarios(refs)
    url = None if dry_run else _mqtt()
    devices = _fleet(fleet, seed)
    t0 = parse_start(start)
    end = t0 + int(days * 86400)
    batch_s = int(parse_duration(batch))
    box = _sandbox(sandbox, "simulated", None if dry_run else devices)
    console.print(f"back-fill {len(devices)} devices, {iso_local(t0)} → {iso_local(end)}"
                  + (f", sandbox {box.city}" if box else "")
                  + (" (dry run)" if dry_run else f" → {url.host}:{url.port}" if url else ""))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("h"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("generating", total=(end - t0 + batch_s - 1) // batch_s, rate="")

        def progress(s: PublishSummary, sim_t: float) -> None:
            bar.update(task, completed=(int(sim_t) - t0 + batch_s - 1) // batch_s,
                       description=f"sim {iso_local(int(sim_t))}",
                       rate=f"{s.total_readings} readings, {s.readings_per_s:,.0f}/s")

        try:
            summary = run_backfill(devices, url, seed=seed, start=t0, end=end, scenarios=refs, batch_s=batch_s,
                                   connections=connections, progress=progress, processes=processes, sandbox=box)
        except MqttError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(_families_table("back-fill", summary.published, summary.acked, summary.readings))
    console.print(f"{summary.total_readings} readings in {summary.messages} messages, "
                  f"{summary.duration_s:.1f} s, {summary.readings_per_s:,.0f} readings/s"
                  + (" (dry run: nothing published)" if dry_run else f", {summary.total_acked} acknowledged"))
    if not dry_run and not summary.complete:
        console.print("[yellow]warning:[/] not every publish was acknowledged before the end")
        raise typer.Exit(1)


@app.command("calibrate")
def calibrate_cmd(
    year: Annotated[int, typer.Option(help="the simulated year (rain and river: means of years around it)")] = 2026,
    seed: SeedOpt = 1,
    fleet: FleetOpt = "smoke",
) -> None:
    """Sample a simulated year for a small fleet and print each figure next to its target band."""
    from simulators.calibrate import calibrate

    devices = _fleet(fleet, seed)
    started = time.monotonic()
    figures = calibrate(year, seed, devices)
    table = Table(title=f"calibration: {len(devices)} devices, {year}, seed {seed}")
    for col in ("figure", "value", "target", "", "source"):
        table.add_column(col, justify="right" if col in ("value", "target") else "left")
    for f in figures:
        value = f"{f.value:.4f}" if abs(f.value) < 1 else f"{f.value:,.1f}"
        table.add_row(f.name, value, f"{f.band[0]:g} – {f.band[1]:g}", "[green]ok[/]" if f.ok else "[red]OUT[/]",
                      f.source)
    console.print(table)
    bad = [f.name for f in figures if not f.ok]
    console.print(f"{len(figures) - len(bad)}/{len(figures)} figures within their band "
                  f"({time.monotonic() - started:.1f} s)")
    if bad:
        raise typer.Exit(1)


@app.command("record")
def record_cmd(
    out: Annotated[Path, typer.Option("--out", help="recording file to write (gzip, see simulators.recording)")],
    topic: Annotated[str, typer.Option(help="MQTT topic filter")] = "ioc/v1/#",
    duration: Annotated[str | None, typer.Option(help="stop after this long (e.g. 10m)")] = None,
    count: Annotated[int | None, typer.Option(help="stop after this many messages")] = None,
) -> None:
    """Capture messages crossing the broker into a compact file (Ctrl-C stops cleanly)."""
    from simulators.recording import RecordSummary, record

    url = _mqtt()
    stop = threading.Event()

    def progress(s: RecordSummary) -> None:
        console.print(f"recorded {s.messages} messages, {s.bytes} bytes, {s.duration_s:.0f} s")

    console.print(f"recording {topic!r} from {url.host}:{url.port} → {out}")
    try:
        summary = record(url, topic, out, duration_s=parse_duration(duration) if duration else None, count=count,
                         stop=stop, progress=progress)
    except KeyboardInterrupt:
        stop.set()
        console.print("stopped")
        return
    console.print(f"recorded {summary.messages} messages ({summary.bytes} payload bytes) in "
                  f"{summary.duration_s:.1f} s to {out}")


@app.command("replay")
def replay_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a recording from `ioc sim record`")],
    speed: Annotated[float, typer.Option(help="N× the recorded pace; 0 = as fast as acked")] = 1.0,
    shift_to_now: Annotated[bool, typer.Option(help="move every dateObserved so the newest lands at now")] = False,
    sandbox: SandboxOpt = None,
    retain: Annotated[bool, typer.Option(help="publish status messages retained (never by default)")] = False,
    statuses: Annotated[bool | None, typer.Option(
        "--statuses/--no-statuses", help="replay status messages (default: only into a sandbox)")] = None,
    allow_live: Annotated[bool, typer.Option(
        help="replay into the real city although IOC_DATABASE_URL holds live readings")] = False,
) -> None:
    """Play a recording back at N× speed, QoS 1, into a sandbox (--sandbox) or, deliberately, the real city."""
    from simulators.recording import ReplaySummary, replay, scan
    from simulators.sandbox import live_readings

    url = _mqtt()
    total, damage = scan(file)
    if damage is not None:
        console.print(f"[yellow]warning:[/] {damage}; replaying the {total} complete records before it")
    box = None
    if sandbox is not None:
        box = _sandbox(sandbox, "replayed")
        assert box is not None
        _register_recording_devices(box, file)
    else:
        dsn = load(CommonSettings).database_url
        try:
            live = live_readings(dsn)
            problem = f"the database holds live readings ({live} reading tables)" if live else None
        except psycopg.Error as exc:
            problem = f"cannot tell whether the database holds live readings ({str(exc).strip()})"
        if problem and not allow_live:
            console.print(f"[red]error:[/] {problem}: a replay into the real city mixes with them. Use "
                          "--sandbox NAME (a city of its own), point IOC_DATABASE_URL/IOC_MQTT_URL at a separate "
                          "database and broker, or pass --allow-live to do it anyway")
            raise typer.Exit(2)
        if problem:
            console.print(f"[yellow]warning:[/] {problem}; replaying into the real city as asked (--allow-live): "
                          "the replayed readings will be stored as live or backfill")
    started = time.monotonic()
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("replay", total=total)

        def progress(_s: ReplaySummary, done: int) -> None:
            bar.update(task, completed=done)

        summary = replay(file, url, speed=speed, shift_to_now=shift_to_now, retain=retain, statuses=statuses,
                         sandbox=box, progress=progress)
        bar.update(task, completed=summary.messages)
    console.print(_families_table(f"replay at {speed or 'max'}×" + (f" into {box.city}" if box else ""),
                                  summary.published, summary.acked, {}))
    console.print(f"{summary.messages} messages, recorded span {summary.recorded_span_s:.1f} s, replayed in "
                  f"{time.monotonic() - started:.1f} s" + (f", timestamps shifted by {summary.shift_s} s"
                                                           if shift_to_now else "")
                  + "".join(f", {n} skipped ({why})" for why, n in summary.skipped.items()))
    if summary.damage is not None:
        console.print(f"[red]error:[/] recording damaged: {summary.damage}")
        raise typer.Exit(1)
    if not summary.complete:
        console.print("[yellow]warning:[/] not every publish was acknowledged before the end")
        raise typer.Exit(1)


def _register_recording_devices(box: Sandbox, file: Path) -> None:
    from ioc.contract.topics import device_id_of
    from simulators.recording import read_records
    from simulators.sandbox import SandboxError

    ids: set[str] = set()
    try:
        for rec in read_records(file):
            ids.add(device_id_of(rec.topic))
    except ValueError:
        pass  # damage is reported by the replay itself
    ids.discard("")
    dsn = load(CommonSettings).database_url
    try:
        devices, missing = box.devices_for(dsn, ids)
        n = box.register(dsn, devices)
    except (SandboxError, psycopg.Error) as exc:
        console.print(f"[red]error:[/] sandbox {box.city}: {str(exc).strip()}")
        raise typer.Exit(2) from None
    console.print(f"sandbox {box.city}: {n} replayed devices registered (ids SIM-…)")
    if missing:
        console.print(f"[yellow]warning:[/] {len(missing)} devices of the recording are not in the live registry "
                      f"(e.g. {', '.join(missing[:3])}); ingest will reject their messages as unknown_device")
