"""The payload generator with no broker: determinism and the payload contract (JSON Schema + pydantic)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import jsonschema
import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from ioc.contract.events import DeviceEvent
from ioc.contract.kinds import KINDS
from ioc.contract.schemas import all_schemas
from ioc.registry import Device
from simulators.clock import parse_start
from simulators.fleet import build_fleet
from simulators.generator import Message, hourly_batches, stream
from simulators.scenario import catalogue

START = parse_start("2026-03-10T17:30:00")  # a Tuesday: dusk falls inside the window
VALID_SCENARIOS = [n for n, sc in catalogue().items() if not sc.invalid_by_design]
INVALID_SCENARIOS = [n for n, sc in catalogue().items() if sc.invalid_by_design]


@pytest.fixture(scope="module")
def smoke() -> list[Device]:
    return build_fleet("smoke", 1)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(all_schemas()[name])


@cache
def _adapter(kind: str) -> TypeAdapter[Any]:
    model = DeviceEvent if kind == "event" else KINDS[kind].model
    return TypeAdapter(model | list[model])  # type: ignore[arg-type,valid-type]


def contract_errors(msg: Message, kind: str) -> list[str]:
    """Why ``msg`` breaks the contract (empty: it keeps it), by JSON Schema and by the pydantic models."""
    errors: list[str] = []
    if msg.channel == "status":
        try:
            text = msg.payload.decode()
        except UnicodeDecodeError:
            return ["status not UTF-8"]
        errors += [e.message for e in _validator("status.schema.json").iter_errors(text)]
        return errors
    name = "event.schema.json" if msg.channel == "event" else f"{KINDS[kind].family}.{kind}.telemetry.schema.json"
    try:
        doc = orjson.loads(msg.payload)
    except orjson.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]
    errors += [f"schema: {e.message}" for e in _validator(name).iter_errors(doc)]
    try:
        _adapter("event" if msg.channel == "event" else kind).validate_json(msg.payload)
    except ValidationError as exc:
        errors.append(f"model: {exc.errors()[0]['msg']}")
    return errors


def all_invalid(messages: Iterable[Message], kinds: dict[str, str]) -> list[Message]:
    return [m for m in messages if contract_errors(m, kinds[m.device_id])]


def _payloads(fleet: Sequence[Device], seed: int, hours: float = 1.0, **kw: Any) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in stream(fleet, seed, START, START + int(hours * 3600), **kw)]


def test_same_seed_gives_byte_identical_streams(smoke: list[Device]) -> None:
    a = _payloads(smoke, 7, scenarios=VALID_SCENARIOS)
    b = _payloads(build_fleet("smoke", 1), 7, scenarios=VALID_SCENARIOS)
    assert len(a) > 1000
    assert a == b


def test_different_seed_gives_different_stream(smoke: list[Device]) -> None:
    a = _payloads(smoke, 7)
    b = _payloads(smoke, 8)
    assert a != b
    # Mostly the same topics (slot phases and events move with the seed), with different values.
    same_topic = {t for t, _ in a} & {t for t, _ in b}
    assert len(same_topic) > 0.9 * len({t for t, _ in a})
    assert {p for _, p in a}.isdisjoint({p for _, p in b} - {b"online"})


def test_backfill_batches_are_deterministic(smoke: list[Device]) -> None:
    def run() -> list[tuple[str, bytes]]:
        return [(m.topic, m.payload) for batch in hourly_batches(smoke, 3, START, START + 2 * 3600) for m in batch]

    assert run() == run()


def test_live_and_backfill_carry_the_same_readings(smoke: list[Device]) -> None:
    live: set[bytes] = set()
    for m in stream(smoke, 5, START, START + 3600, statuses=False):
        if m.channel == "telemetry":
            doc = orjson.loads(m.payload)
            live.update(orjson.dumps(r) for r in (doc if isinstance(doc, list) else [doc]))
    back: set[bytes] = set()
    for batch in hourly_batches(smoke, 5, START, START + 3600):
        for m in batch:
            if m.channel == "telemetry":
                back.update(orjson.dumps(r) for r in orjson.loads(m.payload))
    assert live == back


def test_every_payload_of_every_kind_keeps_the_contract(smoke: list[Device]) -> None:
    kinds = {d.device_id: d.kind for d in smoke}
    messages = list(stream(smoke, 11, START, START + 3 * 3600, scenarios=VALID_SCENARIOS))
    seen = {(kinds[m.device_id], m.channel) for m in messages}
    for kind in KINDS:
        assert (kind, "status") in seen
        if KINDS[kind].model is not None:
            assert (kind, "telemetry") in seen, kind
    assert any(m.channel == "event" for m in messages)
    bad = [(m.topic, m.payload[:200], contract_errors(m, kinds[m.device_id])) for m in all_invalid(messages, kinds)]
    assert bad == []


def test_backfill_batches_keep_the_contract(smoke: list[Device]) -> None:
    kinds = {d.device_id: d.kind for d in smoke}
    batches = list(hourly_batches(smoke, 11, START, START + 2 * 3600, VALID_SCENARIOS))
    messages = [m for b in batches for m in b]
    assert messages and all(m.channel != "status" for m in messages)
    assert all_invalid(messages, kinds) == []


@pytest.mark.parametrize("name", INVALID_SCENARIOS)
def test_bad_payload_scenarios_break_the_contract(smoke: list[Device], name: str) -> None:
    """Malformed bursts fail validation; a wrong clock validates but lies far in the future (ingest rejects)."""
    kinds = {d.device_id: d.kind for d in smoke}
    messages = list(stream(smoke, 11, START, START + 3600, scenarios=[name]))
    clean = list(stream(smoke, 11, START, START + 3600))
    extra = [m for m in messages if (m.topic, m.payload) not in {(c.topic, c.payload) for c in clean}]
    assert extra, "the scenario changed nothing"
    if name == "malformed-burst":
        bad = all_invalid(messages, kinds)
        assert len(bad) == 60
        assert all_invalid(extra, kinds) == extra
    else:
        skewed = [m for m in extra if m.channel == "telemetry"]
        assert skewed
        for m in skewed:
            observed = parse_start(orjson.loads(m.payload)["dateObserved"])
            assert observed - m.t > 300 * 86400  # far beyond ingest's 5-minute future horizon


@pytest.mark.slow
def test_city_day_backfill_generates_millions_of_readings_fast() -> None:
    from simulators.publisher import backfill

    city = build_fleet("city", 1)
    start = parse_start("2026-03-14")
    summary = backfill(city, None, seed=1, start=start, end=start + 86400)
    assert summary.total_readings > 2_000_000
    assert set(summary.readings) == {"lighting", "water", "traffic", "environment"}
    assert summary.readings_per_s > 20_000  # measured ≈ 80 000/s on the 2-core dev box
