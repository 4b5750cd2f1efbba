"""Tests of the test-support helpers: if these are wrong, every other test lies."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from testkit.broker import PROJECT_CONF_DIR, MosquittoBroker
from testkit.databases import (
    create_database,
    database_name,
    drop_database,
    timescaledb_available,
)
from testkit.pgcluster import ThrowawayPostgres
from testkit.ports import free_port

MAIN_SERVER_DSN = os.environ.get("IOC_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
WAIT_S = 10.0


# -- helpers ----------------------------------------------------------------


class _Mqtt:
    """Minimal synchronous wrapper so tests read top to bottom."""

    def __init__(self, broker: MosquittoBroker, client_id: str) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.messages: list[mqtt.MQTTMessage] = []
        self.got_message = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        # connect_async + loop_start: connect() then loop_start() makes paho 2.2
        # create its wake-up socket pair twice and leak one (ResourceWarning).
        self.client.connect_async(broker.host, broker.port)
        self.client.loop_start()
        assert self.connected.wait(WAIT_S), "no CONNACK from the test broker"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.append(msg)
        self.got_message.set()

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(WAIT_S), "no SUBACK from the test broker"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), "no PUBACK from the test broker"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # Break the wrapper<->client cycle so Client.__del__ closes paho's wake-up
        # sockets promptly instead of the GC finalising them first (ResourceWarning).
        self.client.on_connect = None
        self.client.on_subscribe = None
        self.client.on_message = None


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# -- ports ------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# -- broker -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_broker_qos1_round_trip() -> None:
    with MosquittoBroker() as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        sub = _Mqtt(broker, "support-sub")
        pub = _Mqtt(broker, "support-pub")
        try:
            sub.subscribe("ioc/test/roundtrip")
            pub.publish("ioc/test/roundtrip", b"hello")
            assert sub.got_message.wait(WAIT_S), "subscriber never received the message"
            msg = sub.messages[0]
            assert (msg.topic, msg.payload, msg.qos) == ("ioc/test/roundtrip", b"hello", 1)
        finally:
            sub.close()
            pub.close()


@pytest.mark.timeout(60)
def test_broker_config_includes_project_conf_d() -> None:
    with MosquittoBroker() as broker:
        assert f"include_dir {PROJECT_CONF_DIR}\n" in broker.config_text
        assert f"listener {broker.port} 127.0.0.1\n" in broker.config_text
        assert "persistence false\n" in broker.config_text
        assert broker.config_path is not None
        assert broker.config_path.read_text() == broker.config_text
        log = broker.log_text()
        # mosquitto 2.0 prints this for every file it reads from include_dir.
        assert f"Loading config file {PROJECT_CONF_DIR / 'ioc-limits.conf'}" in log
        assert "running" in log
        assert "Error" not in log, log
    assert broker.tmp_dir is None, "__exit__ should remove the temp dir"


def test_broker_missing_project_config_names_the_file(tmp_path: Path) -> None:
    broker = MosquittoBroker(conf_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "ioc-limits.conf")):
        broker.start()
    assert not broker.is_running()


@pytest.mark.timeout(60)
def test_broker_kill_restart_and_persistence() -> None:
    with MosquittoBroker(persistence=True) as broker:
        port = broker.port
        assert "autosave_interval 1\n" in broker.config_text
        pub = _Mqtt(broker, "support-retain-pub")
        pub.publish("ioc/test/retained", b"kept", retain=True)
        pub.close()

        broker.restart()  # graceful: SIGTERM saves the persistence file
        assert broker.port == port
        sub = _Mqtt(broker, "support-retain-sub")
        try:
            sub.subscribe("ioc/test/retained")
            assert sub.got_message.wait(WAIT_S), "retained message lost across restart"
            assert sub.messages[0].payload == b"kept"
        finally:
            sub.close()

        broker.kill()
        assert not broker.is_running()
        assert not _accepts_tcp(port), "killed broker still accepts connections"
        broker.start()
        assert _accepts_tcp(port)
        assert "Error" not in broker.log_text(), broker.log_text()


# -- throw-away PostgreSQL cluster ------------------------------------------


@pytest.fixture
def cluster() -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres() as pg:
        yield pg


def _can_connect(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cluster_starts_fast_and_survives_restart(cluster: ThrowawayPostgres) -> None:
    assert cluster.is_running()
    assert cluster.last_start_seconds is not None
    print(f"throw-away cluster first start (initdb + start): {cluster.last_start_seconds:.2f} s")
    assert cluster.last_start_seconds < 20, "cluster start is far slower than expected"
    assert cluster.dsn == f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("show fsync").fetchone() == ("off",)
        assert conn.execute("show synchronous_commit").fetchone() == ("off",)
        preload = conn.execute("show shared_preload_libraries").fetchone()
        assert preload is not None
        assert ("timescaledb" in str(preload[0])) == cluster.timescaledb_available
        conn.execute("create table kept (v int)")
        conn.execute("insert into kept values (42)")

    port = cluster.port
    cluster.stop()
    assert not cluster.is_running()
    assert not _can_connect(cluster.dsn)

    cluster.start()
    assert cluster.port == port
    assert cluster.is_running()
    with psycopg.connect(cluster.dsn) as conn:
        assert conn.execute("select v from kept").fetchall() == [(42,)]

    cluster.restart()
    assert _can_connect(cluster.dsn)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cluster_kill_breaks_connections_and_recovers(cluster: ThrowawayPostgres) -> None:
    assert _can_connect(cluster.dsn)
    cluster.kill()
    assert not cluster.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.dsn, connect_timeout=3).close()
    cluster.start()  # crash recovery over the same data dir and port
    assert _can_connect(cluster.dsn)
    assert "database system was interrupted" in cluster.log_path.read_text()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cluster_with_synchronous_commit_keeps_commits_across_kill() -> None:
    with ThrowawayPostgres(synchronous_commit=True) as pg:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            assert conn.execute("show synchronous_commit").fetchone() == ("on",)
            conn.execute("create table t (v int)")
            conn.execute("insert into t values (1)")
        pg.kill()
        pg.start()
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("select v from t").fetchall() == [(1,)]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cluster_exit_removes_data_dir() -> None:
    with ThrowawayPostgres() as pg:
        tmp = pg.tmp_dir
        assert tmp is not None and (tmp / "data" / "PG_VERSION").exists()
    assert not tmp.exists()
    assert not pg.is_running()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_timescaledb_detection_agrees_with_server(cluster: ThrowawayPostgres) -> None:
    assert timescaledb_available(cluster.dsn) == cluster.timescaledb_available


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cluster_timescaledb_extension_loads(cluster: ThrowawayPostgres) -> None:
    if not cluster.timescaledb_available:
        pytest.skip("timescaledb.so is not installed for this PostgreSQL server")
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("create extension timescaledb")
        assert conn.execute("show timescaledb.telemetry_level").fetchone() == ("off",)
        conn.execute("create table m (ts timestamptz not null, v double precision)")
        conn.execute("select create_hypertable('m', 'ts')")
        conn.execute("insert into m values (now(), 1.0)")
        assert conn.execute("select count(*) from m").fetchone() == (1,)


# -- databases on the main server -------------------------------------------


@pytest.fixture(scope="module")
def main_server() -> str:
    if not _can_connect(MAIN_SERVER_DSN):
        pytest.fail(
            f"main PostgreSQL server {MAIN_SERVER_DSN} is unreachable; start it or set "
            "IOC_TEST_PG_SERVER to a reachable server DSN"
        )
    return MAIN_SERVER_DSN


@pytest.mark.timeout(60)
def test_create_and_drop_database(main_server: str) -> None:
    dsn = create_database(main_server, prefix="ioc_support")
    name = database_name(dsn)
    try:
        assert name.startswith("ioc_support_") and len(name) == len("ioc_support_") + 12
        conn = psycopg.connect(dsn, autocommit=True)
        try:
            assert conn.execute("select current_database()").fetchone() == (name,)
            conn.execute("create table t (v int)")
            # An open session must not block the drop (WITH FORCE).
            drop_database(main_server, dsn)
        finally:
            conn.close()
    finally:
        drop_database(main_server, name)
    with psycopg.connect(main_server) as conn:
        row = conn.execute("select count(*) from pg_database where datname = %s", [name]).fetchone()
    assert row == (0,)


def test_create_database_names_are_unique(main_server: str) -> None:
    first, second = create_database(main_server), create_database(main_server)
    try:
        assert first != second
        assert database_name(first).startswith("ioc_test_")
    finally:
        drop_database(main_server, first)
        drop_database(main_server, second)


def test_drop_database_refuses_maintenance_db(main_server: str) -> None:
    with pytest.raises(ValueError, match="postgres"):
        drop_database(main_server, main_server)


def test_timescaledb_available_returns_bool(main_server: str) -> None:
    assert isinstance(timescaledb_available(main_server), bool)
