"""Topic layout ``ioc/v1/<city>/<family>/<device_id>/<channel>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TOPIC_PREFIX = "ioc/v1"


class Family(StrEnum):
    LIGHTING = "lighting"
    WATER = "water"
    TRAFFIC = "traffic"
    ENVIRONMENT = "environment"
    # Gateways and network servers publish only their own status (their last will).
    GATEWAY = "gateway"


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


CITY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class TopicError(ValueError):
    """The topic does not follow the contract; ``reason`` is the rejection code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Topic:
    city: str
    family: Family
    device_id: str
    channel: Channel

    def __str__(self) -> str:
        return topic_for(self.city, self.family, self.device_id, self.channel)


def topic_for(city: str, family: str, device_id: str, channel: str) -> str:
    return f"{TOPIC_PREFIX}/{city}/{family}/{device_id}/{channel}"


def subscription_filter() -> str:
    """The filter ingest subscribes to: every city, family, device and channel of v1."""
    return f"{TOPIC_PREFIX}/+/+/+/+"


def device_id_of(topic: str) -> str:
    """The device level of a topic without validating the rest ("" when the layout is wrong): a cheap pre-scan
    for batch lookups; ``parse_topic`` is the real check."""
    parts = topic.split("/")
    return parts[4] if len(parts) == 6 else ""


_FAMILIES = {f.value: f for f in Family}
_CHANNELS = {c.value: c for c in Channel}


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "ioc" or parts[1] != "v1":
        raise TopicError("bad_topic", f"topic {topic!r} is not ioc/v1/<city>/<family>/<device_id>/<channel>")
    _, _, city, family, device_id, channel = parts
    fam = _FAMILIES.get(family)
    if fam is None:
        raise TopicError("unknown_family", f"family {family!r} is not one of {sorted(_FAMILIES)}")
    chan = _CHANNELS.get(channel)
    if chan is None:
        raise TopicError("unknown_channel", f"channel {channel!r} is not one of {sorted(_CHANNELS)}")
    if not CITY_RE.match(city):
        raise TopicError("bad_topic", f"city {city!r} must be a lower-case slug like 'dien-bien-phu'")
    if not DEVICE_ID_RE.match(device_id):
        raise TopicError("bad_topic", f"device id {device_id!r} must match {DEVICE_ID_RE.pattern}")
    return Topic(city, fam, device_id, chan)
