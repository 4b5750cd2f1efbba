"""Publishing, back-fill, record and replay through a real Mosquitto (the project's config, a free port)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ioc.registry import Device
from ioc.settings import MqttUrl
from simulators.clock import parse_start
from simulators.fleet import build_fleet
from simulators.generator import hourly_batches, stream
from simulators.publisher import backfill, publish_fleet
from simulators.recording import read_records, record, replay, shift_payload
from testkit.broker import MosquittoBroker

pytestmark = pytest.mark.integration
START = parse_start("2026-03-10T18:00:00")


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as b:
        yield b


@pytest.fixture(scope="module")
def smoke() -> list[Device]:
    return build_fleet("smoke", 1)


class Collector:
    """A plain subscriber that keeps (topic, payload) of everything on ``ioc/v1/#``."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe("ioc/v1/#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.retain:  # retained copies of earlier tests' statuses are not this test's traffic
            with self._lock:
                self.received.append((msg.topic, bytes(msg.payload)))

    def wait_for(self, n: int, timeout: float = 30.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything extra would show up as a count mismatch
        self.client.disconnect()
        self.client.loop_stop()
        return list(self.received)


def _url(broker: MosquittoBroker) -> MqttUrl:
    return MqttUrl.parse(broker.url)


def test_publish_fleet_delivers_everything_and_counts_acks(broker: MosquittoBroker, smoke: list[Device]) -> None:
    expected = [(m.topic, m.payload) for m in stream(smoke, 1, START, START + 1800, ["cabinet-trip"])]
    expected += [(f"ioc/v1/{d.city}/{d.family}/{d.device_id}/status", b"offline") for d in smoke]
    collector = Collector(broker)
    summary = publish_fleet(smoke, _url(broker), seed=1, start=START, duration_s=1800, speed=600,
                            scenarios=["cabinet-trip"])
    received = collector.wait_for(len(expected))
    assert summary.complete
    assert summary.total_published == len(expected) == summary.total_acked
    assert summary.published == summary.acked
    assert set(summary.published) == {"lighting", "water", "traffic", "environment", "gateway"}
    # One connection per device, except meters behind their gateways.
    assert summary.connections == len({d.gateway_id or d.device_id for d in smoke})
    assert sorted(received) == sorted(expected)
    assert summary.duration_s >= 1800 / 600 * 0.8  # paced by the sim clock, not as fast as possible


def test_device_connections_carry_an_offline_will(broker: MosquittoBroker, smoke: list[Device]) -> None:
    from simulators.publisher import Router

    router = Router(_url(broker), smoke[:3], 300, "will-test-")
    wills = [c.client._will_topic for c in router.connections]  # paho keeps it as bytes
    assert wills == [f"ioc/v1/{d.city}/{d.family}/{d.device_id}/status".encode() for d in smoke[:3]]


def test_backfill_publishes_hourly_batches(broker: MosquittoBroker, smoke: list[Device]) -> None:
    expected = [(m.topic, m.payload) for b in hourly_batches(smoke, 2, START, START + 3 * 3600) for m in b]
    collector = Collector(broker)
    summary = backfill(smoke, _url(broker), seed=2, start=START, end=START + 3 * 3600)
    received = collector.wait_for(len(expected))
    assert summary.complete and summary.total_acked == summary.messages == len(expected)
    assert sorted(received) == sorted(expected)
    assert summary.total_readings > summary.messages  # batched


def test_record_then_replay_at_50x(broker: MosquittoBroker, smoke: list[Device], tmp_path: Path) -> None:
    url = _url(broker)
    out = tmp_path / "feed.iocrec"
    ready, stop = threading.Event(), threading.Event()
    result: dict[str, object] = {}
    recorder = threading.Thread(target=lambda: result.update(
        s=record(url, "ioc/v1/#", out, ready=ready, stop=stop, client_id="rec-test")))
    recorder.start()
    assert ready.wait(10)
    fleet = smoke[:40]
    published = publish_fleet(fleet, url, seed=4, start=START, duration_s=1200, speed=400, offline_at_end=False,
                              client_prefix="rec-")
    time.sleep(1.0)  # the broker has acked everything; let the last deliveries reach the recorder
    stop.set()
    recorder.join(10)
    recs = list(read_records(out))
    live = [(r.topic, r.payload) for r in recs if not r.retain]
    assert len(live) == published.total_acked
    span = recs[-1].time - recs[0].time
    assert span > 1.5  # 1200 s of sim time at 400× ≈ 3 s of wall time

    collector = Collector(broker)
    t0 = time.monotonic()
    summary = replay(out, url, speed=50, statuses=True)  # a real-city replay skips statuses unless asked
    elapsed = time.monotonic() - t0
    received = collector.wait_for(len(recs))
    assert summary.complete and summary.messages == len(recs) == summary.total_acked
    assert sorted(received) == sorted((r.topic, r.payload) for r in recs)
    assert elapsed >= span / 50 * 0.8  # relative timing kept, divided by the speed


def test_shift_payload_moves_timestamps_and_keeps_formats() -> None:
    iso = b'{"dateObserved":"2026-03-10T18:00:00+07:00","pm25":12.0}'
    assert orjson.loads(shift_payload(iso, 3600))["dateObserved"] == "2026-03-10T19:00:00+07:00"
    batch = b'[{"dateObserved":1773140400000,"laneId":1,"intensity":3},{"dateObserved":"2026-03-10T11:00:00Z"}]'
    shifted = orjson.loads(shift_payload(batch, 60))
    assert shifted[0]["dateObserved"] == 1773140460000 and shifted[1]["dateObserved"] == "2026-03-10T11:01:00Z"
    assert shift_payload(b"\xff not json", 60) == b"\xff not json"
    assert shift_payload(b"online", 60) == b"online"


def test_replay_shift_to_now_lands_newest_reading_at_now(broker: MosquittoBroker, tmp_path: Path) -> None:
    from simulators.recording import Record, RecordWriter

    path = tmp_path / "old.iocrec"
    with RecordWriter(path) as w:
        for i, stamp in enumerate(("2026-03-10T18:00:00+07:00", "2026-03-10T18:15:00+07:00")):
            w.write(Record(1000.0 + i * 0.1, "ioc/v1/dien-bien-phu/environment/AQ-01/telemetry",
                           orjson.dumps({"dateObserved": stamp, "pm25": 20.0 + i})))
        w.write(Record(1000.2, "ioc/v1/dien-bien-phu/environment/AQ-01/telemetry", b"{broken"))
    collector = Collector(broker)
    summary = replay(path, _url(broker), speed=0, shift_to_now=True)
    received = collector.wait_for(3)
    assert summary.total_acked == 3
    docs = [orjson.loads(p) for _, p in received if p != b"{broken"]
    stamps = sorted(parse_start(d["dateObserved"]) for d in docs)
    assert abs(stamps[-1] - time.time()) < 10 and stamps[1] - stamps[0] == 900
    assert all(d["dateObserved"].endswith("+07:00") for d in docs)
    assert b"{broken" in [p for _, p in received]  # unparseable payloads replay verbatim


def test_cli_run_backfill_record_replay(broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from simulators.cli import app

    monkeypatch.setenv("IOC_MQTT_URL", broker.url)
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--fleet", "smoke", "--speed", "0", "--duration", "5m",
                                 "--start", "2026-03-10T12:00:00", "--scenario", "water-burst@1m"])
    assert result.exit_code == 0, result.output
    assert "total" in result.output and "acknowledged" in result.output
    result = runner.invoke(app, ["backfill", "--fleet", "smoke", "--days", "0.25", "--start", "2026-03-10"])
    assert result.exit_code == 0, result.output
    assert "readings/s" in result.output and "acknowledged" in result.output
    out = tmp_path / "retained.iocrec"
    result = runner.invoke(app, ["record", "--out", str(out), "--count", "5", "--duration", "10s"])
    assert result.exit_code == 0, result.output
    assert len(list(read_records(out))) == 5  # retained statuses from the run above
    # into the real city: refused unless asked, since the database cannot be checked for live readings
    from testkit.ports import free_port

    monkeypatch.setenv("IOC_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    result = runner.invoke(app, ["replay", str(out), "--speed", "50", "--shift-to-now", "--statuses"])
    assert result.exit_code == 2 and "--allow-live" in result.output, result.output
    result = runner.invoke(app, ["replay", str(out), "--speed", "50", "--shift-to-now", "--statuses",
                                 "--allow-live"])
    assert result.exit_code == 0, result.output
    assert "5 messages" in result.output and "warning" in result.output


def test_no_broker_is_a_clear_error(smoke: list[Device]) -> None:
    from simulators.mqtt import MqttError
    from testkit.ports import free_port

    url = MqttUrl.parse(f"mqtt://127.0.0.1:{free_port()}")
    with pytest.raises(MqttError, match="no connection"):
        publish_fleet(smoke[:2], url, seed=1, start=START, duration_s=60, speed=0, connect_timeout=1.0)


def test_runs_close_their_sockets(broker: MosquittoBroker, smoke: list[Device]) -> None:
    """120 connections per run must not leak descriptors (paho frees its socket pair only on GC)."""
    import os

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    publish_fleet(smoke, _url(broker), seed=1, start=START, duration_s=60, speed=0)
    before = open_fds()
    for _ in range(2):
        publish_fleet(smoke, _url(broker), seed=1, start=START, duration_s=60, speed=0)
    assert open_fds() <= before + 5
