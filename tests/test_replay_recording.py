"""Recordings that were cut short or damaged, the recorder's flushing under kill -9, and what a replay retains."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from ioc.settings import MqttUrl
from simulators.recording import MAGIC, Record, RecordingError, RecordWriter, read_records, replay, scan
from testkit.broker import MosquittoBroker
from testkit.ingest import REPO_ROOT
from testkit.mqtt import Publisher

TOPIC = "ioc/v1/dien-bien-phu/environment/AQ-{:02d}/{}"


def _records(n: int, seed: int = 3) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(Record(1000.0 + i, TOPIC.format(i % 7, "status"), b"offline", 1, True))
        else:  # varied sizes, some poorly compressible, so cuts fall inside headers, topics and payloads alike
            noise = rng.randbytes(rng.randrange(0, 300)).hex()
            payload = f'{{"dateObserved":"2026-12-01T10:{i % 60:02d}:00Z","pm25":{i},"n":"{noise}"}}'.encode()
            out.append(Record(1000.0 + i, TOPIC.format(i % 7, "telemetry"), payload))
    return out


def _write(path: Path, records: list[Record], flush_every: int = 0) -> None:
    with RecordWriter(path) as w:
        for i, rec in enumerate(records, 1):
            w.write(rec)
            if flush_every and i % flush_every == 0:
                w.flush()


def _complete_before(data: bytes, records: list[Record]) -> int:
    """Independently of the reader: how many records the decompressible prefix of ``data`` holds whole."""
    plain = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    end, n = len(MAGIC), 0
    for rec in records:
        end += 15 + len(rec.topic.encode()) + len(rec.payload)
        if end > len(plain):
            break
        n += 1
    return n


def test_a_recording_cut_at_any_byte_yields_every_complete_record_before_the_cut(tmp_path: Path) -> None:
    records = _records(400)
    full = tmp_path / "full.iocrec"
    _write(full, records, flush_every=37)
    data = full.read_bytes()
    assert list(read_records(full)) == records
    cuts = [*sorted(random.Random(7).sample(range(len(MAGIC) + 12, len(data) - 1), 40)), len(data) - 1]
    for cut in cuts:
        part = tmp_path / f"cut-{cut}.iocrec"
        part.write_bytes(data[:cut])
        expected = _complete_before(data[:cut], records)
        got: list[Record] = []
        with pytest.raises(RecordingError) as err:
            got.extend(read_records(part))
        assert got == records[:expected], f"cut at byte {cut}"
        assert err.value.records == expected
        assert f"stopped after {expected} complete records" in str(err.value)
        assert "cut short" in str(err.value) or "ends mid-stream" in str(err.value)
        assert scan(part)[0] == expected and scan(full) == (len(records), None)
    # a cut at a flush point loses nothing before it: 37 records per flush
    assert _complete_before(data[: len(data) // 2], records) >= 37


def test_a_corrupt_spot_keeps_the_records_before_it(tmp_path: Path) -> None:
    records = _records(300)
    path = tmp_path / "bad.iocrec"
    _write(path, records, flush_every=20)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 40] = bytes(40)
    path.write_bytes(bytes(data))
    got: list[Record] = []
    with pytest.raises(RecordingError, match="stopped after"):
        got.extend(read_records(path))
    intact = _complete_before(bytes(data[:middle]), records)
    assert intact > 50 and got[:intact] == records[:intact]
    not_a_recording = tmp_path / "x.iocrec"
    not_a_recording.write_bytes(b"hello")
    with pytest.raises(RecordingError, match="not an ioc sim recording"):
        list(read_records(not_a_recording))


class Retained:
    """Subscribes to everything and keeps what the broker holds retained (delivered on subscribe)."""

    def __init__(self, broker: MosquittoBroker, topic: str = "ioc/v1/#") -> None:
        self.retained: dict[str, bytes] = {}
        self.live: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        done = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"retained-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert done.wait(10)
        time.sleep(0.3)  # retained copies arrive right after the SUBACK

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.retain:
                self.retained[msg.topic] = bytes(msg.payload)
            else:
                self.live.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.integration
def test_replay_publishes_nothing_retained_unless_asked(broker: MosquittoBroker, tmp_path: Path) -> None:
    url = MqttUrl.parse(broker.url)
    path = tmp_path / "statuses.iocrec"
    _write(path, _records(40))
    summary = replay(path, url, speed=0, statuses=True)
    assert summary.messages == 40 and summary.total_acked == 40
    after = Retained(broker)
    assert after.retained == {}
    after.close()
    # into a real city statuses are skipped by default; asked for, and retained on request
    summary = replay(path, url, speed=0)
    assert summary.messages == 36 and summary.skipped["status"] == 4
    replay(path, url, speed=0, statuses=True, retain=True)
    after = Retained(broker)
    assert set(after.retained) == {TOPIC.format(i % 7, "status") for i in (9, 19, 29, 39)}
    after.close()


@pytest.mark.integration
def test_cli_replays_a_truncated_recording_up_to_the_cut_and_exits_non_zero(
        broker: MosquittoBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulators.cli import app
    from testkit.ports import free_port

    records = [r for r in _records(200) if not r.topic.endswith("/status")]
    full = tmp_path / "full.iocrec"
    _write(full, records)
    data = full.read_bytes()
    cut = tmp_path / "cut.iocrec"
    cut.write_bytes(data[: len(data) * 2 // 3])
    expected = _complete_before(data[: len(data) * 2 // 3], records)
    assert 0 < expected < len(records)
    monkeypatch.setenv("IOC_MQTT_URL", broker.url)
    monkeypatch.setenv("IOC_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    watcher = Retained(broker)
    result = CliRunner().invoke(app, ["replay", str(cut), "--speed", "0", "--allow-live"])
    assert result.exit_code == 1, result.output
    assert f"stopped after {expected} complete records" in result.output
    assert "recording damaged" in result.output and f"{expected} messages" in result.output
    deadline = time.monotonic() + 10
    while len(watcher.live) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.close()
    assert watcher.live == [(r.topic, r.payload) for r in records[:expected]]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_kill_9_on_the_recorder_loses_at_most_the_last_second(broker: MosquittoBroker, tmp_path: Path) -> None:
    out = tmp_path / "crash.iocrec"
    env = dict(os.environ, IOC_MQTT_URL=broker.url)
    proc = subprocess.Popen([sys.executable, "-m", "ioc_cli", "sim", "record", "--out", str(out)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        assert "recording" in proc.stdout.readline()
        time.sleep(1.0)  # the line is printed before the SUBACK
        sent = [(TOPIC.format(i % 5, "telemetry"), f'{{"dateObserved":{1796600000000 + i},"pm25":{i}}}'.encode())
                for i in range(2500)]
        with Publisher(broker.host, broker.port, client_id="crash-feed") as pub:
            pub.publish_all(sent)
        time.sleep(1.5)  # a second since the last message reached the recorder, plus its flush interval
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    got: list[Record] = []
    with pytest.raises(RecordingError, match="ends mid-stream"):
        got.extend(read_records(out))
    assert [(r.topic, r.payload) for r in got] == sent
