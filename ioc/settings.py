"""Settings shared by every service: read from ``IOC_*`` environment variables, validated at start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(SystemExit):
    """A bad setting: printed as ``IOC_NAME: what is wrong`` and the process exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_", extra="ignore", validate_default=True)

    # Local defaults match the Debian packages a newcomer gets from `make run`.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ioc"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    # auto: use TimescaleDB when the server offers it; on: require it; off: plain PostgreSQL even if offered.
    timescaledb: Literal["auto", "on", "off"] = "auto"
    city: str = "dien-bien-phu"

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL, e.g. postgresql://postgres@127.0.0.1:5432/ioc")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        MqttUrl.parse(value)
        return value

    @property
    def mqtt(self) -> MqttUrl:
        return MqttUrl.parse(self.mqtt_url)


@dataclass(frozen=True, slots=True)
class MqttUrl:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("must be mqtt://host:port or mqtts://host:port (user:password@ optional)")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {url!r}") from exc
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


T = TypeVar("T", bound=BaseSettings)

# scheme://user:PASSWORD@host and key=value DSNs' password=PASSWORD
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:)\S*(?P<at>@)")
_DSN_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """``text`` with any password in a URL or key=value DSN replaced by ``***``: settings errors reach the log."""
    text = _URL_PASSWORD.sub(r"\g<head>***\g<at>", text)
    return _DSN_PASSWORD.sub(r"\g<head>***", text)


def load(cls: type[T]) -> T:
    """Instantiate settings, turning a validation error into a message that names the variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = []
        for err in exc.errors():
            name = (prefix + "_".join(str(p) for p in err["loc"])).upper()
            lines.append(mask_secrets(f"{name}: {err['msg']} (got {err.get('input')!r})"))
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
