"""Fault injection: the ingest process killed with SIGKILL mid-stream, and the database stopped for 30 s.
Every acknowledged reading must end up stored exactly once. Slow: run with `make test-all`."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from ioc.db.migrate import migrate
from testkit.broker import MosquittoBroker
from testkit.feeds import count, lamp_feed, lamps, register, wait_for
from testkit.ingest import IngestProcess
from testkit.mqtt import Publisher
from testkit.pgcluster import ThrowawayPostgres
from tests.conftest import require_storage

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

ROWS = "SELECT count(*) FROM ioc.lighting_readings"


class BackgroundPublisher:
    """Publishes a feed at a steady pace from a thread, so faults land mid-stream."""

    def __init__(self, broker: MosquittoBroker, feed: list[tuple[str, bytes]], per_second: int) -> None:
        self.feed, self.per_second = feed, per_second
        self.pub = Publisher(broker.host, broker.port, client_id="field")
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            started = time.monotonic()
            for i, (topic, payload) in enumerate(self.feed):
                self.pub.publish(topic, payload)
                ahead = i / self.per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            self.pub.flush()
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.done.set()

    def join(self) -> int:
        self.thread.join(300)
        self.pub.close()
        if self.error:
            raise self.error
        return self.pub.acked


def per_device(dsn: str) -> Counter[str]:
    with psycopg.connect(dsn) as conn:
        return Counter(dict(conn.execute(
            "SELECT device_id, count(*) FROM ioc.lighting_readings GROUP BY device_id").fetchall()))


def test_kill_9_mid_stream_then_restart_stores_every_reading_once(database: str, broker: MosquittoBroker) -> None:
    devices = lamps(500)
    register(database, devices)
    feed = lamp_feed(devices, per_device=100)
    assert len(feed) == 50_000
    ingest = IngestProcess(database, broker.url)
    ingest.wait_connected()
    field = BackgroundPublisher(broker, feed, per_second=8_000)
    deadline = time.monotonic() + 120
    while count(database, ROWS) < 15_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    ingest.kill()  # SIGKILL: no flush, no goodbye; committed-but-unacked batches will be redelivered
    killed_at = count(database, ROWS)
    assert 0 < killed_at < 50_000, "the kill must land mid-stream"
    with IngestProcess(database, broker.url) as restarted:
        restarted.wait_connected()
        acked = field.join()
        assert acked == 50_000
        assert wait_for(database, ROWS, 50_000, timeout=180) == 50_000, restarted.log_text()
        assert per_device(database) == Counter({d.device_id: 100 for d in devices})
        assert restarted.stop() == 0


@pytest.fixture(params=("plain", "timescaledb"))
def throwaway(request: pytest.FixtureRequest) -> Iterator[tuple[ThrowawayPostgres, str]]:
    path: str = request.param
    require_storage(path)
    # synchronous_commit on: a commit acknowledged to ingest must survive the server's stop.
    with ThrowawayPostgres(synchronous_commit=True) as pg:
        dsn = pg.dsn.rsplit("/", 1)[0] + "/ioc"
        if path == "timescaledb" and not pg.timescaledb_available:
            pytest.skip("TimescaleDB not loadable in a throw-away cluster here")
        migrate(dsn, "on" if path == "timescaledb" else "off")
        yield pg, dsn


def test_database_down_30s_mid_stream_loses_nothing_and_memory_stays_bounded(
        throwaway: tuple[ThrowawayPostgres, str], broker: MosquittoBroker) -> None:
    pg, dsn = throwaway
    devices = lamps(300)
    register(dsn, devices)
    feed = lamp_feed(devices, per_device=100)  # 30 000 readings over ~30 s
    max_pending = 3_000
    with IngestProcess(dsn, broker.url, IOC_INGEST_MAX_PENDING=str(max_pending)) as ingest:
        ingest.wait_connected()
        field = BackgroundPublisher(broker, feed, per_second=1_000)
        time.sleep(5)
        assert count(dsn, ROWS) > 0
        rss_before = ingest.rss_bytes()
        pg.stop("immediate")  # the database goes away abruptly, mid-transaction
        outage_started = time.monotonic()
        peak_rss, peak_pending, statuses = rss_before, 0.0, set()
        while time.monotonic() - outage_started < 30:
            time.sleep(1)
            peak_rss = max(peak_rss, ingest.rss_bytes())
            metrics = ingest.metrics()
            peak_pending = max(peak_pending, metrics.get("ioc_ingest_pending_messages", 0))
            assert metrics.get("ioc_ingest_db_up") == 0
            statuses.add(ingest.health()[0])
        assert ingest.proc.poll() is None, "ingest must survive a database outage"
        pg.start()
        acked = field.join()
        assert acked == 30_000
        assert wait_for(dsn, ROWS, 30_000, timeout=180) == 30_000, ingest.log_text()[-3000:]
        assert per_device(dsn) == Counter({d.device_id: 100 for d in devices})
        # bounded: it stopped reading at max_pending (plus one socket read) while the broker held the rest
        assert peak_pending <= max_pending + 2_000, peak_pending
        assert peak_rss - rss_before < 64 << 20, (rss_before, peak_rss)
        assert 503 in statuses or 200 in statuses
        assert "database unavailable" in ingest.log_text()
        assert ingest.stop() == 0
