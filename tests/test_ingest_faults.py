"""Fault injection: the ingest process killed with SIGKILL mid-stream; the database stopped for 30 s, turned
read-only, missing a column, or refusing INSERT for 10 s; the broker connection taken over mid-batch. Every
reading must end up stored exactly once, with no rejection and no restart. Slow: run with `make test-all`."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from ioc.db.connect import database_name
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
        assert statuses == {503}, statuses  # unhealthy for the whole outage, from its first failed write
        assert "database unavailable" in ingest.log_text()
        assert count(dsn, "SELECT count(*) FROM ioc.rejected_messages") == 0
        assert ingest.stop() == 0


# --- the database refuses writes for a while without going away ---------------------------------------------


def _sql(dsn: str, statement: str) -> None:
    # an administrator's session: writable even while the database's default is read-only
    with psycopg.connect(dsn, autocommit=True, options="-c default_transaction_read_only=off") as conn:
        conn.execute(statement.encode())


def _terminate(dsn: str) -> None:
    """End ingest's sessions, as a failover or a DBA would, so that settings of the database apply to it."""
    _sql(dsn, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database_name(dsn)}'"
              " AND application_name LIKE 'ioc-ingest%'")


FAULTS = {
    # name: (what breaks, what heals it, the error class /health must name)
    "read_only": ("ALTER DATABASE {db} SET default_transaction_read_only = on",
                  "ALTER DATABASE {db} RESET default_transaction_read_only", "read_only_sql_transaction"),
    "missing_column": ("ALTER TABLE ioc.lighting_readings RENAME COLUMN power_w TO power_w_old",
                       "ALTER TABLE ioc.lighting_readings RENAME COLUMN power_w_old TO power_w", "undefined_column"),
    "revoked_insert": ("REVOKE INSERT ON ioc.lighting_readings FROM {role}",
                       "GRANT INSERT ON ioc.lighting_readings TO {role}", "insufficient_privilege"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_the_database_refusing_writes_for_10s_mid_stream_is_waited_out(database: str, broker: MosquittoBroker,
                                                                       fault: str) -> None:
    devices = lamps(200)
    register(database, devices)
    feed = lamp_feed(devices, per_device=15)  # 3 000 readings over ~15 s
    role = f"ioc_test_ingest_{secrets.token_hex(4)}"
    ident = {"db": sql.Identifier(database_name(database)).as_string(), "role": sql.Identifier(role).as_string()}
    dsn = database
    if fault == "revoked_insert":  # ingest runs as an ordinary role, as in production
        _sql(database, f"CREATE ROLE {ident['role']} LOGIN; GRANT USAGE ON SCHEMA ioc TO {ident['role']};"
                       f" GRANT ALL ON ALL TABLES IN SCHEMA ioc TO {ident['role']}")
        dsn = database.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    breaks, heals, error = (s.format(**ident) for s in FAULTS[fault])
    try:
        with IngestProcess(dsn, broker.url) as ingest:
            ingest.wait_connected()
            field = BackgroundPublisher(broker, feed, per_second=200)
            while count(database, ROWS) < 300:
                time.sleep(0.1)
            _sql(database, breaks)
            _terminate(database)
            broke_at = time.monotonic()
            statuses, reasons = [], set()
            while time.monotonic() - broke_at < 10:
                time.sleep(0.5)
                status, body = ingest.health()
                if time.monotonic() - broke_at > 2:  # the first write into the fault has failed by then
                    statuses.append(status)
                    reasons.update(str(r) for r in body["reasons"])  # type: ignore[attr-defined]
            stored_during = count(database, ROWS)
            _sql(database, heals)
            assert field.join() == 3_000
            assert wait_for(database, ROWS, 3_000, timeout=120) == 3_000, ingest.log_text()[-3000:]
            assert set(statuses) == {503}, statuses
            assert any(error in r for r in reasons), reasons
            assert stored_during < 3_000
            assert count(database, "SELECT count(*) FROM ioc.rejected_messages") == 0
            assert per_device(database) == Counter({d.device_id: 15 for d in devices})
            assert ingest.proc.poll() is None  # resumed by itself, no restart
            assert ingest.metric("ioc_ingest_db_errors_total", kind="transient", error=error) >= 1
            assert ingest.metric("ioc_ingest_db_errors_total", kind="permanent") == 0
            deadline = time.monotonic() + 10
            while ingest.health()[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert ingest.health()[0] == 200
            assert ingest.stop() == 0
    finally:
        if fault == "revoked_insert":
            _terminate(database)
            _sql(database, f"DROP OWNED BY {ident['role']}; DROP ROLE {ident['role']}")


# --- the broker connection is lost while batches are in flight ----------------------------------------------


def _take_over_session(broker: MosquittoBroker, client_id: str, clean_session: bool) -> None:
    """Connect with ingest's client id: the broker drops ingest's connection (session takeover). With
    clean_session the broker also discards ingest's session and whatever it held."""
    thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                        protocol=mqtt.MQTTv311, manual_ack=True)  # never acknowledges what it is sent
    connected = threading.Event()
    thief.on_connect = lambda *a: connected.set()
    thief.connect_async(broker.host, broker.port)
    thief.loop_start()
    try:
        assert connected.wait(10)
        time.sleep(0.3)
    finally:
        thief.disconnect()
        thief.loop_stop()


@pytest.mark.parametrize("session_kept", [True, False], ids=["session-kept", "session-lost"])
def test_a_reconnect_with_batches_in_flight_loses_nothing(plain_database: str, broker: MosquittoBroker,
                                                          session_kept: bool) -> None:
    devices = lamps(100)
    register(plain_database, devices)
    feed = lamp_feed(devices, per_device=20)
    with IngestProcess(plain_database, broker.url) as ingest, psycopg.connect(plain_database) as blocker:
        ingest.wait_connected()
        # commits wait on this lock: everything ingest receives stays in flight, unacknowledged
        blocker.execute("LOCK TABLE ioc.lighting_readings IN ACCESS EXCLUSIVE MODE")
        with Publisher(broker.host, broker.port) as pub:
            # in waves: one batch blocked in COPY, one in the handoff, one decoded and waiting to be handed off,
            # the rest still queued in the pending buffer (what a disconnect used to drop)
            for wave in (feed[:100], feed[100:200], feed[200:300], feed[300:]):
                pub.publish_all(wave)
                time.sleep(0.5)
        deadline = time.monotonic() + 30
        while ingest.metrics().get("ioc_ingest_pending_messages", 0) < 2_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ingest.metrics().get("ioc_ingest_pending_messages") == 2_000  # all received, none committed
        _take_over_session(broker, "ioc-ingest-0", clean_session=not session_kept)
        ingest.wait_connected(count=2)
        blocker.commit()
        # received before the disconnect: committed although their PUBACKs can no longer be sent; with the
        # session kept, the broker redelivers them too (duplicates, stored once)
        assert wait_for(plain_database, ROWS, 2_000, timeout=60) == 2_000, ingest.log_text()[-3000:]
        assert per_device(plain_database) == Counter({d.device_id: 20 for d in devices})
        lost = ingest.metric("ioc_ingest_mqtt_sessions_lost_total")
        assert lost == (0 if session_kept else 1)
        assert ("kept no session" in ingest.log_text()) is not session_kept
        # settles: nothing left unacknowledged (a PUBACK with a stale id would leave the broker's copy pending)
        deadline = time.monotonic() + 20
        while ingest.metrics().get("ioc_ingest_pending_messages", 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ingest.metrics().get("ioc_ingest_pending_messages") == 0
        assert count(plain_database, "SELECT count(*) FROM ioc.rejected_messages") == 0
        assert ingest.stop() == 0
