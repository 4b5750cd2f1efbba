"""Turn one MQTT message into rows, a status change, or rejections. A pure function: no broker, no database.

Every refusal carries a stable ``reason`` code (counted in metrics, stored in ``ioc.rejected_messages``)
and a ``detail`` that says what was wrong and how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from ioc.contract.base import Reading
from ioc.contract.events import STATUS_VALUES, DeviceEvent
from ioc.contract.kinds import KINDS
from ioc.contract.timestamps import EARLIEST_PLAUSIBLE
from ioc.contract.topics import Channel, Family, TopicError, parse_topic
from services.ingest.tables import MODEL_TABLE, TABLES, Row

# Our payloads nest at most 3 levels (batch → reading → per-phase object); anything deeper is junk.
MAX_JSON_DEPTH = 8


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    kind: str
    family: str
    city: str
    gateway_id: str | None = None
    decommissioned: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_batch_readings: int = 10_000
    max_future: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Rejection:
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


@dataclass(slots=True)
class Decoded:
    """What one message produced. A batch can yield rows and per-reading rejections at once."""

    topic: str
    payload: bytes
    device_id: str | None = None
    table: str | None = None
    rows: list[Row] = field(default_factory=list)
    newest: datetime | None = None  # newest reading time among the rows
    status: str | None = None
    status_retained: bool = False  # replayed on subscribe: initialises an unknown status, never overrides one
    is_gateway: bool = False
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, reason: str, detail: str, raw: bytes | None = None) -> Decoded:
        self.rejections.append(Rejection(self.topic, self.device_id, reason, detail,
                                         self.payload if raw is None else raw))
        return self


class _Adapters:
    """TypeAdapters built once per model: building them is far slower than using them."""

    def __init__(self) -> None:
        self.one: dict[type[Reading], TypeAdapter[Any]] = {}
        self.many: dict[type[Reading], TypeAdapter[Any]] = {}

    def get(self, model: type[Reading], batch: bool) -> TypeAdapter[Any]:
        cache = self.many if batch else self.one
        adapter = cache.get(model)
        if adapter is None:
            adapter = cache[model] = TypeAdapter(list[model] if batch else model)  # type: ignore[valid-type]
        return adapter


_ADAPTERS = _Adapters()


def decode(
    topic: str, payload: bytes, devices: Mapping[str, DeviceInfo], now: datetime, limits: Limits = Limits(),
    retained: bool = False,
) -> Decoded:
    out = Decoded(topic, payload)
    reject = out.reject
    try:
        parsed = parse_topic(topic)
    except TopicError as exc:
        return reject(exc.reason, exc.detail)
    out.device_id = parsed.device_id
    device = devices.get(parsed.device_id)
    if device is None:
        return reject("unknown_device", f"device {parsed.device_id!r} is not in the registry; register it with "
                                        "`ioc devices import`")
    if device.decommissioned:
        return reject("decommissioned_device", f"device {parsed.device_id!r} is decommissioned; its history is kept "
                                               "but new messages are refused (re-register it to accept them)")
    if device.family != parsed.family:
        return reject("family_mismatch", f"device {parsed.device_id!r} is registered as {device.family!r}, "
                                         f"but published under {parsed.family.value!r}")
    if device.city != parsed.city:
        return reject("city_mismatch", f"device {parsed.device_id!r} is registered in {device.city!r}, "
                                       f"but published under {parsed.city!r}")
    if len(payload) > limits.max_payload_bytes:
        return reject("oversize", f"payload is {len(payload)} bytes; the limit is {limits.max_payload_bytes} "
                                  "(split a back-fill into several batches)")

    if parsed.channel is Channel.STATUS:
        status = payload.strip().decode("ascii", errors="replace")
        if status not in STATUS_VALUES:
            return reject("invalid_status", f"status payload must be plain 'online' or 'offline', got {status[:40]!r}")
        out.status = status
        out.status_retained = retained
        out.is_gateway = parsed.family is Family.GATEWAY
        return out

    if parsed.channel is Channel.EVENT:
        model: type[Reading] = DeviceEvent
    else:
        kind_model = KINDS[device.kind].model
        if kind_model is None:
            return reject("unexpected_channel", f"a {device.kind} publishes only on its status channel")
        model = kind_model
    _validate(out, model, parsed.device_id, now, limits)
    return out


def _validate(out: Decoded, model: type[Reading], device_id: str, now: datetime, limits: Limits) -> None:
    payload, reject = out.payload, out.reject
    start = payload[:1]
    if start.isspace():  # rare: only then pay for a copy of the payload
        start = payload.lstrip()[:1]
    batch = start == b"["
    try:
        value = _ADAPTERS.get(model, batch).validate_json(payload)
    except ValidationError as exc:
        _split_invalid(out, model, batch, exc, device_id, now, limits)
        return
    readings: list[Reading] = value if batch else [value]
    if batch and not readings:
        reject("empty_batch", "the batch array is empty; send at least one reading or none at all")
        return
    if len(readings) > limits.max_batch_readings:
        reject("batch_too_large", f"{len(readings)} readings in one message; the limit is {limits.max_batch_readings}")
        return
    _accept(out, model, readings, device_id, now, limits)


def _accept(out: Decoded, model: type[Reading], readings: list[Reading], device_id: str, now: datetime,
            limits: Limits) -> None:
    reject = out.reject
    spec = TABLES[MODEL_TABLE[model]]
    out.table = spec.name
    horizon = now + limits.max_future
    for index, reading in enumerate(readings):
        if reading.deviceId is not None and reading.deviceId != device_id:
            reject("device_mismatch", f"reading {index}: deviceId {reading.deviceId!r} differs from the topic's "
                                      f"{device_id!r}", _reading_bytes(reading))
            continue
        if reading.dateObserved > horizon:
            reject("future_timestamp", f"reading {index}: dateObserved {reading.dateObserved.isoformat()} is more "
                                       f"than {limits.max_future} ahead of the server clock; check the device clock",
                   _reading_bytes(reading))
            continue
        out.rows.append(spec.to_row(device_id, reading, now))
        if out.newest is None or reading.dateObserved > out.newest:
            out.newest = reading.dateObserved


def _split_invalid(out: Decoded, model: type[Reading], batch: bool, exc: ValidationError, device_id: str,
                   now: datetime, limits: Limits) -> None:
    """The slow path: say exactly why, and keep the good readings of a partly bad batch."""
    payload, reject = out.payload, out.reject
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        reject(*_classify_unparseable(payload, str(first["msg"])))
        return
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        document = json.loads(payload)  # pydantic accepted the JSON (NaN/Infinity tokens); the stdlib does too
    if _depth(document) > MAX_JSON_DEPTH:
        reject("too_deeply_nested", f"payload nests deeper than {MAX_JSON_DEPTH} levels; readings are flat objects")
        return
    if not batch or not isinstance(document, list):
        reject(*_classify_error(exc))
        return
    good: list[Reading] = []
    one = _ADAPTERS.get(model, batch=False)
    for index, item in enumerate(document):
        raw = json.dumps(item, allow_nan=True).encode()
        try:
            good.append(one.validate_json(raw))
        except ValidationError as item_exc:
            reason, detail = _classify_error(item_exc)
            reject(reason, f"reading {index}: {detail}", raw)
    if good:
        _accept(out, model, good, device_id, now, limits)


def _classify_unparseable(payload: bytes, message: str) -> tuple[str, str]:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "bad_encoding", f"payload is not UTF-8 ({exc.reason} at byte {exc.start}); send UTF-8 JSON"
    if "recursion limit" in message:
        return "too_deeply_nested", "payload nests deeper than the JSON parser allows; readings are flat objects"
    return "invalid_json", f"payload is not JSON: {message}"


_REASONS = {
    "missing": "missing_field",
    "extra_forbidden": "unexpected_field",
    "finite_number": "non_finite_number",
    "literal_error": "invalid_value",
    "enum": "invalid_value",
    "string_pattern_mismatch": "invalid_value",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "too_long": "out_of_range",
    "string_too_long": "out_of_range",
}


def _classify_error(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"]) or "payload"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    detail = f"{loc}: {err['msg']}{more}"
    if err["loc"][:1] == ("dateObserved",) and err["type"] != "missing":
        return "invalid_timestamp", (
            "dateObserved: must be ISO 8601 with a UTC offset (e.g. 2026-03-14T18:05:00+07:00) "
            f"or epoch milliseconds after {EARLIEST_PLAUSIBLE.date()}; got {err['input']!r}")
    if err["type"] == "value_error":
        if "no measurement" in str(err["msg"]):
            return "no_measurement", detail
        return "invalid_value", detail
    return _REASONS.get(err["type"], "wrong_type"), detail


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, a flat object 1), stopping past the limit."""
    deepest, stack = 0, [(value, 0)]
    while stack and deepest <= MAX_JSON_DEPTH:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _reading_bytes(reading: Reading) -> bytes:
    return reading.model_dump_json(exclude_none=True).encode()
