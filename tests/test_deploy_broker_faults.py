"""The production broker under faults (slow: `make test-all`): a SIGTERM restart in the middle of a QoS 1 stream,
and a 200 000-reading burst while ingest is stopped for 60 s. Every reading the broker acknowledged to its publisher
must be stored exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ioc.broker_auth import hash_secret, write_passwd
from testkit.feeds import T0, lamp_reading, lamps, register, topic, wait_for
from testkit.ingest import IngestProcess
from testkit.secure_broker import AckedPublisher, ProductionBroker, rss_bytes

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

INGEST_PW, SIM_PW = "ingest-pw", "sim-pw"
GROUP = {"IOC_INGEST_SHARED_GROUP": "ioc-ingest-5b0e8d1c"}
# Documented in deploy/SCALING.md ("Broker memory"): what a queued ~250-byte reading costs Mosquitto 2.0.11, with
# headroom for allocator slack; measured by this test.
BROKER_BASE_BYTES = 32 << 20
BROKER_BYTES_PER_QUEUED = 1024


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ProductionBroker]:
    """The production config; ingest and a simulator account on the services' listener, one lamp on TLS."""
    b = ProductionBroker(tmp_path)
    accounts = b.etc / "ioc"
    write_passwd(accounts / "services.passwd",
                 {"ioc-ingest": hash_secret(INGEST_PW), "ioc-simulator": hash_secret(SIM_PW)})
    write_passwd(accounts / "devices.passwd", {"LAMP0000": hash_secret("lamp-pw")})
    (accounts / "devices.acl").write_text("pattern write ioc/v1/+/+/%u/telemetry\n")
    with b:
        yield b


def ingest_url(broker: ProductionBroker) -> str:
    return f"mqtt://ioc-ingest:{INGEST_PW}@127.0.0.1:{broker.port}"


def stored_minutes(dsn: str) -> set[int]:
    """Reading k of LAMP0000 is k minutes after T0 (testkit.feeds)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT (extract(epoch FROM time - %s) / 60)::int, count(*) FROM ioc.lighting_readings"
                            " WHERE device_id = 'LAMP0000' GROUP BY time", (T0,)).fetchall()
    assert all(n == 1 for _, n in rows)
    return {int(k) for k, _ in rows}


def test_broker_restart_with_sigterm_mid_stream_loses_no_acknowledged_reading(
        plain_database: str, broker: ProductionBroker) -> None:
    register(plain_database, lamps(1))
    total = 30_000
    with IngestProcess(plain_database, ingest_url(broker), **GROUP) as ingest:
        ingest.wait_connected()
        pub = AckedPublisher(broker.device_port, "LAMP0000", "lamp-pw", ca=broker.pki.ca, window=200)
        restarted = threading.Event()

        def restart_when_a_third_is_acked() -> None:
            while len(pub.acked) < total // 3:
                time.sleep(0.01)
            broker.stop()  # SIGTERM: mosquitto writes its persistence file and exits
            time.sleep(1)
            broker.start()
            restarted.set()

        fault = threading.Thread(target=restart_when_a_third_is_acked, daemon=True)
        fault.start()
        for k in range(total):
            pub.publish(k, topic("LAMP0000"), json.dumps(lamp_reading(0, k)).encode())
        fault.join(120)
        assert restarted.is_set()
        deadline = time.monotonic() + 120
        while pub.unacknowledged() and time.monotonic() < deadline:
            time.sleep(0.1)
        pub.close()
        acked = pub.acked
        assert pub.connects >= 2, "the publisher never saw the broker go away"
        assert len(acked) == total, f"{total - len(acked)} never acknowledged (paho resends them after reconnecting)"
        assert wait_for(plain_database, "SELECT count(*) >= %s FROM ioc.lighting_readings", True, 120, len(acked)), \
            f"not all stored within 120 s; ingest log tail:\n{''.join(ingest.log[-20:])}"
        assert sum("subscribed to" in line for line in ingest.log) >= 2  # the ingest reconnected too
        assert ingest.stop() == 0
    stored = stored_minutes(plain_database)
    assert acked <= stored, f"{len(acked - stored)} acknowledged readings lost"


def test_burst_of_200k_readings_while_ingest_is_stopped_60s(plain_database: str, broker: ProductionBroker) -> None:
    """The simulated fleet publishes as fast as the broker accepts; the broker holds it all for the stopped ingest's
    persistent session within the documented memory bound; ingest drains it on return."""
    fleet = lamps(2000)
    register(plain_database, fleet)
    per_device = 100
    total = len(fleet) * per_device
    with IngestProcess(plain_database, ingest_url(broker), **GROUP) as ingest:
        ingest.wait_connected()  # creates the persistent session and its shared subscription
        assert ingest.stop() == 0
    stopped = time.monotonic()
    base_rss = rss_bytes(broker.pid)
    pub = AckedPublisher(broker.port, "ioc-simulator", SIM_PW, client_id="sim", window=1000)
    started = time.monotonic()
    index = 0
    for k in range(per_device):
        for n, device in enumerate(fleet):
            pub.publish(index, topic(device.device_id), json.dumps(lamp_reading(n, k)).encode())
            index += 1
    while pub.unacknowledged() and time.monotonic() - started < 120:
        time.sleep(0.05)
    publish_s = time.monotonic() - started
    pub.close()
    assert len(pub.acked) == total
    peak_rss = rss_bytes(broker.pid)
    time.sleep(max(0.0, 60 - (time.monotonic() - stopped)))
    assert rss_bytes(broker.pid) <= peak_rss * 1.1  # nothing grows while it waits
    with IngestProcess(plain_database, ingest_url(broker), **GROUP) as ingest:
        ingest.wait_connected()
        drain_start = time.monotonic()
        assert wait_for(plain_database, "SELECT count(*) FROM ioc.lighting_readings", total, 300) == total
        drain_s = time.monotonic() - drain_start
        assert ingest.stop() == 0
    with psycopg.connect(plain_database) as conn:
        assert conn.execute("SELECT count(DISTINCT (device_id, time)) FROM ioc.lighting_readings").fetchone() == (
            total,)
    bound = BROKER_BASE_BYTES + BROKER_BYTES_PER_QUEUED * total
    print(f"\nburst: {total} readings published in {publish_s:.1f} s ({total / publish_s:.0f} msg/s); broker RSS "
          f"{base_rss / 2**20:.0f} MiB idle -> {peak_rss / 2**20:.0f} MiB holding them "
          f"({(peak_rss - base_rss) / total:.0f} B/message; bound {bound / 2**20:.0f} MiB); drained in {drain_s:.1f} s")
    assert peak_rss <= bound
