"""Attacks on a real Mosquitto started from the production config (deploy/mosquitto/mosquitto.conf), with accounts
and ACL issued by `ioc devices credentials` from a real registry, and test certificates from a private CA."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ioc.broker_auth import read_passwd, verify_secret
from ioc.db.migrate import migrate
from ioc.registry import Device
from testkit.broker import REPO_ROOT
from testkit.databases import create_database, drop_database
from testkit.feeds import CITY, lamp_reading, register, topic, wait_for
from testkit.ingest import IngestProcess
from testkit.secure_broker import PRODUCTION_CONF, Client, ProductionBroker
from tests.conftest import PG_SERVER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SERVICE_PASSWORDS = {"ioc-ingest": "ingest-pw-for-tests", "ioc-recorder": "recorder-pw", "ioc-api": "api-pw"}


def _device(device_id: str, family: str, kind: str, gateway_id: str | None = None) -> Device:
    return Device(device_id=device_id, family=family, kind=kind, city=CITY, report_interval_s=600,
                  gateway_id=gateway_id)


FLEET = [
    _device("LAMP0000", "lighting", "streetlight"),
    _device("LAMP0001", "lighting", "streetlight"),
    _device("GW01", "gateway", "gateway"),
    _device("GW02", "gateway", "gateway"),
    _device("WM0001", "water", "meter", gateway_id="GW01"),
    _device("WM0002", "water", "meter", gateway_id="GW01"),
    _device("WM0003", "water", "meter", gateway_id="GW02"),
]


def ioc(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ioc_cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, IOC_DATABASE_URL=dsn), timeout=60)


@dataclass
class Site:
    dsn: str
    root: Path
    secrets: dict[str, str]

    def broker(self, conf_text: str | None = None) -> ProductionBroker:
        broker = ProductionBroker(self.root / f"broker-{time.monotonic_ns()}", conf_text=conf_text)
        for name in ("devices.passwd", "devices.acl", "services.passwd"):
            (broker.etc / "ioc" / name).write_bytes((self.root / name).read_bytes())
        return broker


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A registry with two lamps, two gateways and three meters behind them; their broker accounts issued by
    `ioc devices credentials` the way an operator does it."""
    root = tmp_path_factory.mktemp("site")
    dsn = create_database(PG_SERVER)
    try:
        migrate(dsn, "off")
        register(dsn, FLEET)
        done = ioc("devices", "credentials", "sync", "--passwd", str(root / "devices.passwd"),
                   "--acl", str(root / "devices.acl"), "--secrets-out", str(root / "secrets.csv"), dsn=dsn)
        assert done.returncode == 0, done.stderr
        with (root / "secrets.csv").open() as fh:
            secrets = {row["device_id"]: row["secret"] for row in csv.DictReader(fh)}
        for name, password in SERVICE_PASSWORDS.items():
            (root / f"{name}.pw").write_text(password + "\n")
            done = ioc("devices", "credentials", "service", name, "--passwd", str(root / "services.passwd"),
                       "--password-file", str(root / f"{name}.pw"), dsn=dsn)
            assert done.returncode == 0, done.stderr
        yield Site(dsn, root, secrets)
    finally:
        drop_database(PG_SERVER, dsn)


@pytest.fixture(scope="module")
def broker(site: Site) -> Iterator[ProductionBroker]:
    with site.broker() as b:
        yield b


def device(broker: ProductionBroker, site: Site, name: str, *, password: str | None = None,
           client_id: str = "", clean_session: bool = True) -> Client:
    return Client(broker.device_port, name, site.secrets[name] if password is None else password,
                  ca=broker.pki.ca, client_id=client_id, clean_session=clean_session)


def service(broker: ProductionBroker, name: str, **kwargs: object) -> Client:
    return Client(broker.port, name, SERVICE_PASSWORDS[name], **kwargs)  # type: ignore[arg-type]


def settle() -> None:
    time.sleep(0.5)  # long enough for the broker to route a QoS 1 message on an idle machine, ×10


# --- the issued credentials -------------------------------------------------------------------------------------

def test_credentials_are_issued_once_hashed_and_only_to_account_holders(site: Site) -> None:
    assert set(site.secrets) == {"LAMP0000", "LAMP0001", "GW01", "GW02"}  # meters go through their gateway
    passwd = read_passwd(site.root / "devices.passwd")
    assert set(passwd) == set(site.secrets)
    for name, secret in site.secrets.items():
        assert passwd[name].startswith("$7$101$") and secret not in passwd[name]
        assert verify_secret(secret, passwd[name])
    assert oct((site.root / "devices.passwd").stat().st_mode & 0o777) == "0o640"
    assert oct((site.root / "secrets.csv").stat().st_mode & 0o777) == "0o600"
    # a second sync issues nothing new, keeps the hashes, and refuses to overwrite an export
    again = ioc("devices", "credentials", "sync", "--passwd", str(site.root / "devices.passwd"),
                "--acl", str(site.root / "devices.acl"), "--secrets-out", str(site.root / "secrets.csv"), dsn=site.dsn)
    assert again.returncode == 0 and "0 secrets issued, 4 kept" in again.stderr
    assert read_passwd(site.root / "devices.passwd") == passwd
    rotated = ioc("devices", "credentials", "sync", "--passwd", str(site.root / "rotated.passwd"),
                  "--acl", str(site.root / "rotated.acl"), "--secrets-out", str(site.root / "secrets.csv"),
                  dsn=site.dsn)
    assert rotated.returncode == 2 and "exists" in rotated.stderr
    assert not (site.root / "rotated.passwd").exists()


def test_our_hashes_are_mosquitto_passwd_hashes(tmp_path: Path) -> None:
    """A hash written by mosquitto_passwd verifies with ours, and ours has its exact shape (the broker accepting ours
    is what the connection tests below show)."""
    from ioc.broker_auth import hash_secret

    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "p"), "LAMP9", "s3cret"], check=True)
    theirs = read_passwd(tmp_path / "p")["LAMP9"]
    assert verify_secret("s3cret", theirs) and not verify_secret("s3cre", theirs)
    ours = hash_secret("s3cret")
    assert [len(part) for part in ours.split("$")] == [len(part) for part in theirs.split("$")]


def test_a_device_id_in_the_service_namespace_gets_no_account(site: Site, tmp_path: Path) -> None:
    dsn = create_database(PG_SERVER)
    try:
        migrate(dsn, "off")
        register(dsn, [_device("ioc-ingest-0", "lighting", "streetlight")])
        done = ioc("devices", "credentials", "sync", "--passwd", str(tmp_path / "p"), "--acl", str(tmp_path / "a"),
                   dsn=dsn)
        assert done.returncode == 2 and "service accounts' namespace" in done.stderr
        assert not (tmp_path / "p").exists()
    finally:
        drop_database(PG_SERVER, dsn)


# --- who may connect --------------------------------------------------------------------------------------------

def test_anonymous_and_wrong_passwords_are_refused(broker: ProductionBroker, site: Site) -> None:
    for client in (
        Client(broker.device_port, None, None, ca=broker.pki.ca),                  # anonymous, devices' listener
        Client(broker.port, None, None),                                            # anonymous, services' listener
        device(broker, site, "LAMP0000", password="wrong"),
        device(broker, site, "LAMP0000", password=site.secrets["LAMP0001"]),        # someone else's secret
        Client(broker.port, "LAMP0000", site.secrets["LAMP0000"]),                  # a device on the services' door
        Client(broker.device_port, "ioc-ingest", SERVICE_PASSWORDS["ioc-ingest"], ca=broker.pki.ca),  # and back
    ):
        with client:
            outcome = client.connect()
            assert not outcome.connected, outcome
            assert "authori" in outcome.reason.lower() or "password" in outcome.reason.lower(), outcome
    with device(broker, site, "LAMP0000") as ok:
        assert ok.connect().connected


def test_plaintext_to_the_tls_listener_fails(broker: ProductionBroker, site: Site) -> None:
    with Client(broker.device_port, "LAMP0000", site.secrets["LAMP0000"]) as plain:  # no TLS
        outcome = plain.connect(timeout=5)
        assert not outcome.connected
    # and on the wire: a CONNECT in the clear gets no CONNACK, the broker hangs up
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 0])
    with socket.create_connection(("127.0.0.1", broker.device_port), timeout=5) as raw:
        raw.sendall(connect)
        try:
            answer = raw.recv(16)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"\x20"), answer  # 0x20 = CONNACK


def test_client_certificates_can_be_required(site: Site) -> None:
    """The documented option: `require_certificate true` on the devices' listener — then a device needs a
    certificate from the private CA on top of its secret."""
    conf = PRODUCTION_CONF.read_text()
    assert conf.count("require_certificate false\n") == 1
    with site.broker(conf.replace("require_certificate false\n", "require_certificate true\n")) as strict:
        pki, secret = strict.pki, site.secrets["LAMP0000"]
        with Client(strict.device_port, "LAMP0000", secret, ca=pki.ca) as no_cert:
            assert not no_cert.connect(timeout=5).connected
        with Client(strict.device_port, "LAMP0000", secret, ca=pki.ca, cert=(pki.client_cert, pki.client_key)) as ok:
            assert ok.connect().connected
        with Client(strict.device_port, "LAMP0000", "wrong", ca=pki.ca,
                    cert=(pki.client_cert, pki.client_key)) as wrong:
            assert not wrong.connect().connected  # the certificate adds to the secret, it does not replace it


# --- what a connected device may do -----------------------------------------------------------------------------

def test_a_device_publishes_only_under_its_own_id(broker: ProductionBroker, site: Site) -> None:
    with service(broker, "ioc-recorder") as tap, device(broker, site, "LAMP0000") as lamp:
        assert tap.connect().connected and tap.subscribe("ioc/v1/#") == [1]
        assert lamp.connect().connected
        for target in ("LAMP0000", "LAMP0001", "GW01", "WM0001"):
            for channel in ("telemetry", "event", "status"):
                lamp.publish(topic(target, channel=channel), target.encode())
        lamp.publish("ioc/v1/other-city/water/LAMP0001/telemetry", b"x")
        lamp.publish("ioc/v2/LAMP0000", b"x")
        settle()
        assert sorted(t for t, _ in tap.messages) == sorted(topic("LAMP0000", channel=c)
                                                            for c in ("telemetry", "event", "status"))
        assert lamp.disconnects == []


def test_a_device_cannot_subscribe_to_everything_nor_to_another_devices_commands(
        broker: ProductionBroker, site: Site) -> None:
    with service(broker, "ioc-api") as api, device(broker, site, "LAMP0000") as lamp:
        assert api.connect().connected and lamp.connect().connected
        # Mosquitto 2.0's acl_file grants every SUBSCRIBE and checks read access on each delivery instead.
        for pattern in ("#", "ioc/v1/#", "$SYS/#", topic("LAMP0001", channel="command"), "ioc/v1/+/+/+/command"):
            lamp.subscribe(pattern)
        with device(broker, site, "LAMP0001") as other:
            assert other.connect().connected
            other.publish(topic("LAMP0001"), b"{}")
            other.publish(topic("LAMP0001", channel="status"), b"online")
        api.publish(topic("LAMP0001", channel="command"), b"dim 30")
        api.publish(topic("LAMP0000", channel="command"), b"dim 50")
        api.publish(topic("LAMP0001"), b"{}")  # the API may not pose as a device either
        settle()
        assert lamp.messages == [(topic("LAMP0000", channel="command"), b"dim 50")]


def test_a_gateway_publishes_only_for_the_devices_behind_it(broker: ProductionBroker, site: Site) -> None:
    with service(broker, "ioc-recorder") as tap, device(broker, site, "GW01") as gw:
        assert tap.connect().connected and tap.subscribe("ioc/v1/#") == [1]
        assert gw.connect().connected
        allowed = [topic("WM0001", "water"), topic("WM0002", "water", "status"), topic("GW01", "gateway", "status")]
        denied = [topic("WM0003", "water"), topic("LAMP0000"), topic("WM0001", "lighting"),
                  "ioc/v1/muong-lay/water/WM0001/telemetry"]
        for t in allowed + denied:
            gw.publish(t, b"{}")
        settle()
        assert sorted(t for t, _ in tap.messages) == sorted(allowed)
    with service(broker, "ioc-api") as api, device(broker, site, "GW01") as gw:
        assert api.connect().connected and gw.connect().connected
        gw.subscribe("ioc/v1/+/+/+/command")
        for meter in ("WM0001", "WM0003"):
            api.publish(topic(meter, "water", "command"), b"close valve")
        settle()
        assert gw.messages == [(topic("WM0001", "water", "command"), b"close valve")]


# --- sessions: nobody takes over a service's ------------------------------------------------------------------

# Production sets IOC_INGEST_SHARED_GROUP to a secret (deploy/SCALING.md, "Shared-subscription group"): Mosquitto 2.0's
# acl_file grants any SUBSCRIBE, so a device that joins the ingest's group by name would be handed its share of the
# stream, which the ACL then refuses to deliver — lost. A device cannot join a group whose name it does not know.
GROUP = {"IOC_INGEST_SHARED_GROUP": "ioc-ingest-7f3a9c2e51d84b06a1e2"}


def _ingest_url(broker: ProductionBroker) -> str:
    return f"mqtt://ioc-ingest:{SERVICE_PASSWORDS['ioc-ingest']}@127.0.0.1:{broker.port}"


def _stream(lamp: Client, start: int, n: int) -> None:
    for k in range(start, start + n):
        lamp.publish(topic("LAMP0000"), json.dumps(lamp_reading(0, k)).encode(), wait=False)
    deadline = time.monotonic() + 30
    while lamp.acks < start + n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lamp.acks == start + n


def _impostor_attempts(broker: ProductionBroker, site: Site) -> list[Client]:
    """LAMP0001 asks for the ingest's client id everywhere it can, with a clean session (which would empty the
    ingest's queue if the broker handed the session over) and tries to read the ingest's share."""
    on_devices = device(broker, site, "LAMP0001", client_id="ioc-ingest-0", clean_session=True)
    assert on_devices.connect().connected  # allowed in, but as LAMP0001
    for group in ("ioc-ingest", "ioc", "ingest"):  # Mosquitto grants it; the deliveries are what the ACL stops
        on_devices.subscribe(f"$share/{group}/ioc/v1/+/+/+/+")
    on_services = Client(broker.port, "LAMP0001", site.secrets["LAMP0001"], client_id="ioc-ingest-0")
    assert not on_services.connect().connected
    on_services.close()
    return [on_devices]


@dataclass
class Attack:
    stored: int                       # of the 200 readings the broker acknowledged
    impostor_got: list[tuple[str, bytes]]
    ingest_log: list[str]             # the first ingest's, which ran while the impostor first tried


def _session_attack(site: Site, broker: ProductionBroker, group: dict[str, str] = GROUP, *,
                    while_running: bool = True) -> Attack:
    """100 readings while ingest runs, 100 more while it is stopped (queued in its persistent session), the impostor
    in between (``while_running``) and while it is away; the impostor leaves, ingest comes back."""
    with psycopg.connect(site.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE ioc.lighting_readings")
    impostors: list[Client] = []
    try:
        with IngestProcess(site.dsn, _ingest_url(broker), **group) as ingest, \
                device(broker, site, "LAMP0000") as lamp:
            ingest.wait_connected()
            assert lamp.connect().connected
            _stream(lamp, 0, 100)
            assert wait_for(site.dsn, "SELECT count(*) FROM ioc.lighting_readings", 100, 30) == 100
            if while_running:
                impostors += _impostor_attempts(broker, site)
            assert ingest.stop() == 0
            _stream(lamp, 100, 100)  # queued for ioc-ingest-0
            impostors += _impostor_attempts(broker, site)  # while it is away
            settle()
    finally:
        for c in impostors:
            c.close()
    with IngestProcess(site.dsn, _ingest_url(broker), **group) as back:
        back.wait_connected()
        stored = wait_for(site.dsn, "SELECT count(*) FROM ioc.lighting_readings", 200, 30)
        assert back.stop() == 0
    return Attack(stored, [m for c in impostors for m in c.messages], ingest.log)


def test_a_device_with_the_ingests_client_id_neither_takes_over_nor_empties_its_session(
        broker: ProductionBroker, site: Site) -> None:
    attack = _session_attack(site, broker)
    assert attack.stored == 200  # every reading the broker acknowledged, once
    assert attack.impostor_got == []
    assert sum("subscribed to" in line for line in attack.ingest_log) == 1  # never kicked off while running
    drops = [line for line in attack.ingest_log if "disconnected from broker" in line]
    assert len(drops) == 1 and "Normal disconnection" in drops[0]  # only its own stop


@pytest.mark.slow
def test_the_takeover_test_detects_the_attack_without_the_fix(site: Site) -> None:
    """Same attack on the production config minus `use_username_as_clientid`: the device's clean session replaces
    the ingest's and the readings queued for it are gone — what the production config prevents."""
    conf = PRODUCTION_CONF.read_text()
    assert conf.count("use_username_as_clientid true\n") == 1
    with site.broker(conf.replace("use_username_as_clientid true\n", "")) as weak:
        # only while the ingest is away: while it runs, the two would kick each other off in a loop
        attack = _session_attack(site, weak, while_running=False)
    assert attack.stored == 100  # the 100 queued while the ingest was away are gone


@pytest.mark.slow
def test_a_device_that_knows_the_shared_group_name_takes_its_share(site: Site) -> None:
    """Why IOC_INGEST_SHARED_GROUP is a secret in production: with the default, guessable name, the impostor's
    subscription to $share/ioc-ingest/… is granted, the broker hands it its round-robin share of the queued readings,
    and the ACL then refuses to deliver them — lost. If a Mosquitto upgrade ever checks SUBSCRIBE in acl_file, this
    test fails and the secret becomes unnecessary (deploy/SCALING.md, "Shared-subscription group")."""
    with site.broker() as fresh:  # a fresh broker: no session of an earlier test subscribed under another group
        attack = _session_attack(site, fresh, {"IOC_INGEST_SHARED_GROUP": "ioc-ingest"})
    assert attack.stored < 200 and attack.impostor_got == []  # handed to the impostor, refused by the ACL: lost


# --- limits -----------------------------------------------------------------------------------------------------

def test_an_oversize_packet_disconnects_its_sender_and_the_others_keep_being_served(
        broker: ProductionBroker, site: Site) -> None:
    with service(broker, "ioc-recorder") as tap, device(broker, site, "LAMP0000") as big, \
            device(broker, site, "LAMP0001") as other:
        assert tap.connect().connected and tap.subscribe("ioc/v1/#") == [1]
        assert big.connect().connected and other.connect().connected
        big.publish(topic("LAMP0000"), b"x" * (1 << 20) + b"y" * 2048, wait=False)  # > max_packet_size 1049600
        deadline = time.monotonic() + 10
        while not big.disconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        assert big.disconnects, "the broker kept a client that sent an oversize packet"
        other.publish(topic("LAMP0001"), b"small")
        just_under = b"z" * (1 << 20)  # a 1 MiB gateway batch still fits
        other.publish(topic("LAMP0001", channel="event"), just_under)
        settle()
        assert (topic("LAMP0001"), b"small") in tap.messages
        assert (topic("LAMP0001", channel="event"), just_under) in tap.messages
        assert all(t != topic("LAMP0000") for t, _ in tap.messages)
        assert other.disconnects == [] and tap.disconnects == []
