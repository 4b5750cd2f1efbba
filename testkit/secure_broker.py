"""A throw-away Mosquitto started from the *production* config (deploy/mosquitto/mosquitto.conf), with test
certificates from a private CA made by openssl, for the security tests.

Only paths and ports are swapped (each swap must find its target, so the file under test is the production one);
listeners, per-listener settings, accounts, ACLs and limits are exactly what is deployed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .broker import REPO_ROOT, MosquittoBroker
from .ports import free_port

PRODUCTION_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
SERVICES_ACL = REPO_ROOT / "deploy" / "mosquitto" / "services.acl"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path, client_cn: str = "LAMP0000") -> Pki:
    """A private CA, a server certificate for 127.0.0.1/localhost and one client certificate (EC P-256, 2 days)."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=IOC test CA", "-days", "2",
             cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn, ext in (("server", "localhost", True), ("client", client_cn, False)):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *(["-extfile", "san.ext"] if ext else []), cwd=directory)
    for key in directory.glob("*.key"):
        key.chmod(0o644)  # the broker may run as another user
    return Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key",
               directory / "client.crt", directory / "client.key")


class ProductionBroker(MosquittoBroker):
    """``port`` is the services' listener (plaintext, 127.0.0.1); ``device_port`` the devices' TLS listener.
    Write ``etc / 'ioc' / '{devices,services}.passwd'`` and ``devices.acl`` before ``start()``."""

    def __init__(self, root: Path, *, persistence: bool = True, conf_text: str | None = None) -> None:
        super().__init__(persistence=persistence)
        self.root = root
        self.etc = root / "etc"
        self.device_port = free_port()
        self.conf_text = conf_text if conf_text is not None else PRODUCTION_CONF.read_text()
        (self.etc / "ioc").mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(self.etc / "certs")
        shutil.copy(SERVICES_ACL, self.etc / "ioc" / "services.acl")

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("broker not running")
        return self._proc.pid

    def _build_config(self, tmp_dir: Path) -> str:
        swaps = [
            ("listener 1883 127.0.0.1\n", f"listener {self.port} 127.0.0.1\n"),
            ("listener 8883\n", f"listener {self.device_port} 127.0.0.1\n"),
            ("/etc/mosquitto/conf.d", str(REPO_ROOT / "deploy" / "mosquitto" / "conf.d")),
            ("/etc/mosquitto/", f"{self.etc}/"),
            ("persistence_location /var/lib/mosquitto/", f"persistence_location {tmp_dir}/"),
            ("log_dest syslog", f"log_dest file {tmp_dir / 'mosquitto.log'}"),
        ]
        text = self.conf_text
        for old, new in swaps:
            if old not in text:
                raise AssertionError(f"production broker config no longer contains {old!r}; update {__file__}")
            text = text.replace(old, new)
        text += "log_type all\n"
        if os.geteuid() == 0:
            text += "user root\n"  # see MosquittoBroker._build_config
        return text


@dataclass
class Outcome:
    connected: bool
    reason: str


class Client:
    """A paho client that records what happened to it: connect result, granted QoS, messages, disconnects."""

    def __init__(self, port: int, username: str | None, password: str | None, *, client_id: str = "",
                 ca: Path | None = None, clean_session: bool = True, protocol: int = mqtt.MQTTv311,
                 cert: tuple[Path, Path] | None = None) -> None:
        kwargs: dict[str, Any] = {"protocol": protocol}
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean_session
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, **kwargs)
        self.port = port
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca), certfile=str(cert[0]) if cert else None,
                                keyfile=str(cert[1]) if cert else None)
        self.messages: list[tuple[str, bytes]] = []
        self.granted: list[int] = []
        self.disconnects: list[str] = []
        self.acks = 0
        self._connack = threading.Event()
        self._suback = threading.Event()
        self._lock = threading.Lock()
        self.outcome = Outcome(False, "no answer")
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.outcome = Outcome(not reason.is_failure, str(reason))
        self._connack.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.disconnects.append(str(reason))
        self._connack.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self.granted = [r.value for r in reasons]
        self._suback.set()

    def _on_publish(self, *args: Any) -> None:
        with self._lock:
            self.acks += 1

    def connect(self, timeout: float = 10) -> Outcome:
        """Connect and wait for the CONNACK (or the connection's failure)."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except OSError as exc:  # e.g. the TLS handshake failing
            self.outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
            return self.outcome
        self.client.loop_start()
        self._connack.wait(timeout)
        return self.outcome

    def subscribe(self, topic: str, timeout: float = 10) -> list[int]:
        self._suback.clear()
        self.client.subscribe(topic, qos=1)
        if not self._suback.wait(timeout):
            raise TimeoutError(f"no SUBACK for {topic}")
        return self.granted

    def publish(self, topic: str, payload: bytes, wait: bool = True) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AckedPublisher:
    """QoS 1 publisher with credentials (and TLS when ``ca`` is given) that remembers *which* messages the broker
    acknowledged, across reconnects (paho resends unacknowledged messages after one). At most ``window`` messages
    unacknowledged, like testkit.mqtt.Publisher."""

    def __init__(self, port: int, username: str, password: str, *, ca: Path | None = None, client_id: str = "",
                 window: int = 1000) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.max_inflight_messages_set(window)
        self.client.reconnect_delay_set(1, 2)
        self._window = threading.BoundedSemaphore(window)
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # mid -> index of the message in the order published
        self._early: set[int] = set()       # PUBACKs that arrived before publish() returned the mid
        self.acked: set[int] = set()
        self.connects = 0
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise ConnectionError(f"publisher could not connect to 127.0.0.1:{port}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self.connects += 1
            self._connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            index = self._pending.pop(mid, None)
            if index is None:
                self._early.add(mid)
                return
            self.acked.add(index)
        self._window.release()

    def publish(self, index: int, topic: str, payload: bytes) -> None:
        self._window.acquire()
        info = self.client.publish(topic, payload, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.add(index)
                release = True
            else:
                self._pending[info.mid] = index
                release = False
        if release:
            self._window.release()

    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")
