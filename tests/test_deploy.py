"""The deployment files: the compose stack as Debian's docker-compose reads it, the systemd units as systemd-analyze
reads them, and the compose broker config against the production one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.broker import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
SYSTEMD = DEPLOY / "systemd"
LONG_RUNNING = {"timescaledb", "mosquitto", "ingest-0", "ingest-1", "api", "prometheus", "alertmanager", "grafana"}
ONE_SHOT = {"migrate", "broker-accounts"}


def compose_config(*args: str) -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/ensure-system.sh installs it) — NOT validated")
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE / "docker-compose.yml"), *args, "config"],
                          capture_output=True, text=True, timeout=60, cwd=COMPOSE)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_docker_compose_accepts_the_stack_and_the_simulators_profile() -> None:
    services = compose_config("--profile", "simulators")["services"]
    assert set(services) == LONG_RUNNING | ONE_SHOT | {"simulators"}
    assert services["simulators"]["profiles"] == ["simulators"]
    assert all("profiles" not in s for name, s in services.items() if name != "simulators")


def _ports(service: dict[str, Any]) -> set[tuple[str, str, int]]:
    """(host ip, published, target) whatever syntax docker-compose normalised them to."""
    out = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.add((str(port.get("host_ip", "")), str(port["published"]), int(port["target"])))
        else:
            *host, published, target = str(port).removesuffix("/tcp").split(":")
            out.add((host[0] if host else "", published, int(target)))
    return out


def _volumes(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) from short or long syntax."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out.append((str(volume["source"]), str(volume["target"]), bool(volume.get("read_only"))))
        else:
            source, target, *mode = str(volume).split(":")
            out.append((source, target, mode == ["ro"]))
    return out


def test_only_the_device_port_is_open_to_the_world_and_uis_to_this_host() -> None:
    services = compose_config("--profile", "simulators")["services"]
    published = {(name, *port) for name, s in services.items() for port in _ports(s)}
    assert published == {("mosquitto", "", "8883", 8883), ("api", "127.0.0.1", "8000", 8000),
                         ("grafana", "127.0.0.1", "3000", 3000)}
    config = compose_config()
    assert config["networks"]["backend"]["internal"] is True
    for name in ("timescaledb", "ingest-0", "ingest-1", "prometheus", "migrate", "broker-accounts"):
        assert list(services[name]["networks"]) == ["backend"], name


def test_services_have_health_checks_restart_policies_named_volumes_and_file_secrets() -> None:
    config = compose_config()
    services = config["services"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    for name, service in services.items():
        for source, target, read_only in _volumes(service):
            if not source.startswith("/"):
                assert source in config["volumes"], (name, source)
            else:  # bind mounts: project files, read-only, except the one-shot export of new device secrets
                assert read_only or target == "/issued", (name, source)
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|TOKEN", key) and not key.endswith("_FILE"):
                pytest.fail(f"{name}: {key} set inline; secrets come from files")
            assert "@" not in str(value) or re.match(r"^(postgresql|mqtt)://[a-z_-]+@", str(value)), (name, key)
    assert {"pgdata", "mosquitto-data", "broker-accounts", "prometheus-data", "grafana-data"} <= set(config["volumes"])
    for name, secret in config["secrets"].items():
        assert Path(secret["file"]).is_relative_to(COMPOSE / "secrets"), name
    # workers on the shared subscription, each with its own stable number, none with DDL rights
    for n in (0, 1):
        env = services[f"ingest-{n}"]["environment"]
        assert env["IOC_INGEST_WORKER"] == str(n)
        assert env["IOC_DATABASE_URL"].startswith("postgresql://ioc_ingest@")
        assert env["IOC_MQTT_URL"] == "mqtt://ioc-ingest@mosquitto:1883"
        assert services[f"ingest-{n}"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["ioc", "db", "migrate"]


def test_the_compose_broker_config_is_the_production_one_with_container_paths() -> None:
    production = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    compose = (COMPOSE / "mosquitto.conf").read_text()
    body = production[production.index("# Each listener has its own"):]
    for old, new in [
        ("listener 1883 127.0.0.1\n", "listener 1883\n"),
        ("/etc/mosquitto/certs/server.crt", "/run/secrets/mqtt_server_crt"),
        ("/etc/mosquitto/certs/server.key", "/run/secrets/mqtt_server_key"),
        ("/etc/mosquitto/certs/ca.crt", "/run/secrets/mqtt_ca_crt"),
        ("/etc/mosquitto/ioc/services.acl", "/mosquitto/config/services.acl"),
        ("/etc/mosquitto/ioc/", "/mosquitto/accounts/"),
        ("/var/lib/mosquitto/", "/mosquitto/data/"),
        ("log_dest syslog", "log_dest stdout"),
        ("/etc/mosquitto/conf.d", "/mosquitto/config/conf.d"),
    ]:
        assert old in body, old
        body = body.replace(old, new)
    assert compose.endswith(body)
    assert not compose[: -len(body)].strip("\n").replace("\n#", "").strip("#").count("\n")  # only a comment header


def test_the_entrypoint_turns_secret_files_into_settings(tmp_path: Path) -> None:
    (tmp_path / "pg").write_text("pg secret\n")
    (tmp_path / "mqtt").write_text("p@ss:w/rd\n")
    (tmp_path / "group").write_text("ioc-ingest-abc123\n")
    env = dict(os.environ, IOC_PG_PASSWORD_FILE=str(tmp_path / "pg"), IOC_MQTT_PASSWORD_FILE=str(tmp_path / "mqtt"),
               IOC_MQTT_URL="mqtt://ioc-ingest@mosquitto:1883", IOC_INGEST_SHARED_GROUP_FILE=str(tmp_path / "group"))
    done = subprocess.run([str(COMPOSE / "with-secrets.sh"), "env"], env=env, capture_output=True, text=True,
                          check=True)
    out = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert out["PGPASSWORD"] == "pg secret"
    assert out["IOC_MQTT_URL"] == "mqtt://ioc-ingest:p%40ss%3Aw%2Frd@mosquitto:1883"
    assert out["IOC_INGEST_SHARED_GROUP"] == "ioc-ingest-abc123"
    from ioc.settings import MqttUrl
    assert MqttUrl.parse(out["IOC_MQTT_URL"]).password == "p@ss:w/rd"


# --- systemd ----------------------------------------------------------------------------------------------------

UNITS = sorted(p.name for p in SYSTEMD.glob("*.service"))
HARDENING = ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=",
             "MemoryMax=", "ProtectHome=yes", "RestrictAddressFamilies=", "SystemCallFilter=@system-service"]


def _units_for_verify(tmp_path: Path, text_of: dict[str, str] | None = None) -> list[str]:
    """The units with /opt/ioc/.venv swapped for this checkout's (verify checks that ExecStart exists)."""
    venv = REPO_ROOT / ".venv"
    paths = []
    for name in UNITS:
        text = (text_of or {}).get(name, (SYSTEMD / name).read_text())
        assert "/opt/ioc/.venv/bin/ioc" in text, name
        (tmp_path / name).write_text(text.replace("/opt/ioc/.venv", str(venv)))
        paths.append(str(tmp_path / (name.replace("@.", "@7.") if "@." in name else name)))
    return paths


def _verify(paths: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not available on this machine — the units are NOT verified")
    return subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    assert set(UNITS) == {"ioc-migrate.service", "ioc-ingest@.service", "ioc-api.service",
                          "ioc-fleet-metrics.service"}
    done = _verify(_units_for_verify(tmp_path))
    assert done.returncode == 0 and "ioc" not in done.stderr, done.stderr


def test_systemd_analyze_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    broken = (SYSTEMD / "ioc-api.service").read_text().replace("Type=exec", "Type=exce")
    done = _verify(_units_for_verify(tmp_path, {"ioc-api.service": broken}))
    assert done.returncode != 0 or "exce" in done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_units_are_hardened_and_wait_for_the_network(name: str) -> None:
    text = (SYSTEMD / name).read_text()
    for directive in HARDENING:
        assert re.search(rf"^{re.escape(directive)}", text, re.M), (name, directive)
    assert re.search(r"^Wants=network-online.target$", text, re.M)
    assert re.search(r"^After=network-online.target", text, re.M)
    assert re.search(r"^User=ioc$", text, re.M)


def test_migrations_run_once_in_their_own_unit_not_in_every_worker() -> None:
    worker = (SYSTEMD / "ioc-ingest@.service").read_text()
    assert "migrate" not in "".join(line for line in worker.splitlines() if line.startswith("Exec"))
    assert re.search(r"^Requires=ioc-migrate.service$", worker, re.M)
    migrate = (SYSTEMD / "ioc-migrate.service").read_text()
    assert "Type=oneshot" in migrate and "RemainAfterExit=yes" in migrate


@pytest.mark.parametrize(("instance", "port"), [(0, 9108), (1, 9109), (9, 9117), (10, 9118), (123, 9231)])
def test_each_worker_instance_gets_a_valid_distinct_port(instance: int, port: int) -> None:
    """Run the unit's ExecStart shell line as systemd would (%i substituted, $$ unescaped), with `env` for ioc."""
    line = next(line for line in (SYSTEMD / "ioc-ingest@.service").read_text().splitlines()
                if line.startswith("ExecStart="))
    command = line.removeprefix("ExecStart=").replace("%i", str(instance)).replace("$$", "$")
    command = command.replace("exec /opt/ioc/.venv/bin/ioc ingest", "exec env")
    assert command.startswith("/bin/sh -c '") and command.endswith("'")
    done = subprocess.run(["/bin/sh", "-c", command[len("/bin/sh -c '"):-1]], capture_output=True, text=True,
                          check=True)
    assert f"IOC_INGEST_METRICS_PORT={port}" in done.stdout.splitlines()


def test_make_secrets_then_broker_accounts_give_every_service_and_device_an_account(
        plain_database: str, tmp_path: Path) -> None:
    """deploy/compose/make-secrets.sh creates every secret the compose file names (and keeps them on a second run);
    broker-accounts.sh, as the compose service runs it, turns them and the registry into the broker's accounts."""
    from ioc.broker_auth import read_passwd, verify_secret
    from testkit.feeds import lamps, register

    secrets = tmp_path / "secrets"
    env = dict(os.environ, SECRETS_DIR=str(secrets))
    subprocess.run([str(COMPOSE / "make-secrets.sh"), "mqtt.test.invalid"], env=env, check=True, capture_output=True)
    first = {p.name: p.read_bytes() for p in secrets.iterdir()}
    subprocess.run([str(COMPOSE / "make-secrets.sh"), "mqtt.test.invalid"], env=env, check=True, capture_output=True)
    assert {p.name: p.read_bytes() for p in secrets.iterdir()} == first
    named = {Path(s["file"]).name for s in yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["secrets"]
             .values()}
    assert named <= set(first)
    assert secrets.stat().st_mode & 0o777 == 0o700
    assert (secrets / "mqtt_ca.key").stat().st_mode & 0o777 == 0o600

    register(plain_database, lamps(3))
    (tmp_path / "accounts").mkdir()
    (tmp_path / "issued").mkdir()
    env = dict(os.environ, SECRETS_DIR=str(secrets), ACCOUNTS_DIR=str(tmp_path / "accounts"),
               ISSUED_DIR=str(tmp_path / "issued"), IOC_DATABASE_URL=plain_database,
               PATH=f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    subprocess.run(["/bin/sh", str(COMPOSE / "broker-accounts.sh")], env=env, check=True, capture_output=True)
    services = read_passwd(tmp_path / "accounts" / "services.passwd")
    for name in ("ingest", "api", "recorder", "simulator"):
        password = (secrets / f"mqtt_{name}_password").read_text().splitlines()[0]
        assert verify_secret(password, services[f"ioc-{name}"])
    assert set(read_passwd(tmp_path / "accounts" / "devices.passwd")) == {"LAMP0000", "LAMP0001", "LAMP0002"}
    (issued,) = (tmp_path / "issued").iterdir()
    assert issued.read_text().count("\n") == 4  # header + 3 devices
