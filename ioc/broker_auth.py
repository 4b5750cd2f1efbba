"""Broker credentials from the device registry: Mosquitto's password file (hashed secrets) and the devices' ACL.

The MQTT username of a device is its device id; on the devices' listener Mosquitto also uses it as the client id
(``use_username_as_clientid``), so no device can take over another client's session. Devices behind a gateway or a
network server have no account of their own: their gateway's account may write for them, and only for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

# Mosquitto 2's password hash: PBKDF2-HMAC-SHA512, `$7$<iterations>$<salt b64>$<hash b64>` (what mosquitto_passwd
# writes). 101 iterations is mosquitto_passwd's own default: our secrets are 256-bit random tokens, so key stretching
# adds no strength, while the broker pays every iteration again for each of thousands of devices reconnecting at once.
ITERATIONS = 101
SALT_BYTES = 12
SECRET_BYTES = 32
# Service accounts and their client ids (ioc-ingest-<n>, …) live in this namespace; no device may be named into it.
RESERVED_PREFIX = "ioc-"


class CredentialsError(ValueError):
    pass


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    mine = hashlib.pbkdf2_hmac("sha512", secret.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(mine, base64.b64decode(digest))


def read_passwd(path: Path) -> dict[str, str]:
    """username -> hash of a Mosquitto password file; a missing file is empty."""
    if not path.exists():
        return {}
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith("$"):
            raise CredentialsError(f"{path}:{number}: not a `username:$7$…` line")
        entries[user] = hashed
    return entries


def write_private(path: Path, text: str, mode: int = 0o640) -> None:
    """Replace ``path`` atomically with a file only its owner (and group: the broker's) can read."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)  # O_CREAT's mode is filtered by the umask
    os.replace(tmp, path)


def write_passwd(path: Path, entries: Mapping[str, str]) -> None:
    write_private(path, "".join(f"{user}:{hashed}\n" for user, hashed in sorted(entries.items())))


def check_account_name(name: str, *, service: bool) -> None:
    if not name or any(c in name for c in ":+#/\0") or name != name.strip():
        raise CredentialsError(f"{name!r} cannot be an MQTT username (':', '+', '#', '/' and blanks are not allowed)")
    if not service and name.startswith(RESERVED_PREFIX):
        raise CredentialsError(f"device id {name!r} starts with {RESERVED_PREFIX!r}, the service accounts' namespace; "
                               "a device of that name could pose as a service's client id")


@dataclass(frozen=True)
class Behind:
    """A device that reaches the broker through a gateway's account."""

    city: str
    family: str
    device_id: str


@dataclass(frozen=True)
class Accounts:
    devices: list[str]                  # every account holder (devices without a gateway, gateways included)
    behind: dict[str, list[Behind]]     # gateway id -> devices registered behind it


def accounts_from_registry(conn: psycopg.Connection[Any]) -> Accounts:
    rows = conn.execute(
        "SELECT device_id, family, city, gateway_id FROM ioc.devices ORDER BY device_id"
    ).fetchall()
    devices: list[str] = []
    behind: dict[str, list[Behind]] = {}
    for device_id, family, city, gateway_id in rows:
        if gateway_id is None:
            check_account_name(str(device_id), service=False)
            devices.append(str(device_id))
        else:
            behind.setdefault(str(gateway_id), []).append(Behind(str(city), str(family), str(device_id)))
    missing = sorted(set(behind) - set(devices))
    if missing:
        raise CredentialsError(f"devices are registered behind gateways that are not registered themselves: "
                               f"{', '.join(missing[:10])}")
    return Accounts(devices, behind)


DEVICE_CHANNELS = ("telemetry", "event", "status")


def devices_acl(accounts: Accounts) -> str:
    """The devices' listener ACL: each account its own topics, each gateway those of its devices."""
    lines = [
        "# Generated by `ioc devices credentials sync` from the device registry. Do not edit: run it again.",
        "# Every account (the username is the device id) writes only under its own device-id level and reads",
        "# only its own command topic. Nothing else is allowed: no '#', no other device, no $SYS.",
        *(f"pattern write ioc/v1/+/+/%u/{channel}" for channel in DEVICE_CHANNELS),
        "pattern read ioc/v1/+/+/%u/command",
        "",
        "# Gateways and network servers: the devices registered behind them (ioc.devices.gateway_id).",
    ]
    for gateway, devices in sorted(accounts.behind.items()):
        lines.append(f"user {gateway}")
        for d in devices:
            base = f"ioc/v1/{d.city}/{d.family}/{d.device_id}"
            lines += [f"topic write {base}/{channel}" for channel in DEVICE_CHANNELS]
            lines.append(f"topic read {base}/command")
        lines.append("")
    return "\n".join(lines) + "\n"


@dataclass
class SyncResult:
    issued: dict[str, str]   # device id -> new secret (shown once)
    removed: list[str]
    kept: int


def sync(passwd: Mapping[str, str], accounts: Iterable[str], rotate: Iterable[str] = ()) -> tuple[dict[str, str],
                                                                                                  SyncResult]:
    """New password entries: a fresh secret for each account without one (and each in ``rotate``), entries of
    accounts no longer registered dropped. Returns the new entries and what changed."""
    wanted = list(accounts)
    rotate = set(rotate)
    unknown = rotate - set(wanted)
    if unknown:
        raise CredentialsError(f"not registered as account holders: {', '.join(sorted(unknown))}")
    entries: dict[str, str] = {}
    issued: dict[str, str] = {}
    for account in wanted:
        if account in passwd and account not in rotate:
            entries[account] = passwd[account]
        else:
            issued[account] = new_secret()
            entries[account] = hash_secret(issued[account])
    removed = sorted(set(passwd) - set(wanted))
    return entries, SyncResult(issued, removed, len(wanted) - len(issued))
