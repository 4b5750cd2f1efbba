"""The decoder is a pure function: every case here runs with no broker and no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.decode import (
    MAX_DETAILED_REJECTIONS,
    MAX_JSON_DEPTH,
    SUMMARY_REASON,
    DeviceInfo,
    Limits,
    _depth,
    decode,
)
from testkit.feeds import BAD_INPUTS, CITY, topic

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
DEVICES = {
    "LAMP0001": DeviceInfo("streetlight", "lighting", CITY),
    "LAMP0002": DeviceInfo("streetlight", "lighting", CITY),
    "CAB01": DeviceInfo("cabinet", "lighting", CITY),
    "WM01": DeviceInfo("meter", "water", CITY),
    "TC01": DeviceInfo("counter", "traffic", CITY),
    "AQ01": DeviceInfo("air_quality", "environment", CITY),
    "GW01": DeviceInfo("gateway", "gateway", CITY),
    "MLAY1": DeviceInfo("streetlight", "lighting", "muong-lay"),
}


@pytest.mark.parametrize(("reason", "device", "payload"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_bad_input_has_its_own_reason(reason: str, device: str, payload: bytes) -> None:
    out = decode(topic(device), payload, DEVICES, NOW)
    assert out.rows == []
    assert [r.reason for r in out.rejections] == [reason]
    assert out.rejections[0].detail
    assert out.rejections[0].topic == topic(device)


@pytest.mark.parametrize(("bad_topic", "reason"), [
    ("ioc/v1/dien-bien-phu/gasworks/LAMP0001/telemetry", "unknown_family"),
    ("ioc/v1/dien-bien-phu/lighting/LAMP0001/commands", "unknown_channel"),
    ("ioc/v2/dien-bien-phu/lighting/LAMP0001/telemetry", "bad_topic"),
    ("ioc/v1/dien-bien-phu/lighting/LAMP0001", "bad_topic"),
    ("ioc/v1/Dien Bien/lighting/LAMP0001/telemetry", "bad_topic"),
    ("ioc/v1/dien-bien-phu/water/LAMP0001/telemetry", "family_mismatch"),
    ("ioc/v1/dien-bien-phu/lighting/MLAY1/telemetry", "city_mismatch"),
    ("ioc/v1/dien-bien-phu/gateway/GW01/telemetry", "unexpected_channel"),
    ("ioc/v1/dien-bien-phu/lighting/LAMP0001/status", "invalid_status"),
])
def test_topic_and_registry_rejections(bad_topic: str, reason: str) -> None:
    out = decode(bad_topic, b'{"dateObserved": "2026-03-14T18:00:00+07:00"}', DEVICES, NOW)
    assert [r.reason for r in out.rejections] == [reason]


def test_iso_and_epoch_ms_are_the_same_instant() -> None:
    iso = decode(topic("LAMP0001"), b'{"dateObserved": "2026-03-14T18:00:00+07:00"}', DEVICES, NOW)
    epoch = decode(topic("LAMP0001"), b'{"dateObserved": 1773486000000}', DEVICES, NOW)
    assert iso.rows[0][0] == epoch.rows[0][0] == datetime(2026, 3, 14, 11, 0, tzinfo=UTC)
    assert iso.newest == epoch.newest


def test_late_readings_are_accepted_and_the_future_limit_is_configurable() -> None:
    old = decode(topic("LAMP0001"), b'{"dateObserved": "2025-06-01T00:00:00Z"}', DEVICES, NOW)  # within retention
    assert len(old.rows) == 1
    soon = json.dumps({"dateObserved": (NOW + timedelta(minutes=3)).isoformat()}).encode()
    assert len(decode(topic("LAMP0001"), soon, DEVICES, NOW).rows) == 1
    strict = decode(topic("LAMP0001"), soon, DEVICES, NOW, Limits(max_future=timedelta(minutes=1)))
    assert [r.reason for r in strict.rejections] == ["future_timestamp"]


def test_partly_bad_batch_keeps_the_good_readings_and_names_the_bad_ones() -> None:
    batch = [{"dateObserved": f"2026-03-14T18:0{m}:00+07:00", "powerState": "on"} for m in range(5)]
    batch[1]["powerState"] = "blinking"
    batch[3]["voltage"] = float("nan")
    out = decode(topic("LAMP0001"), json.dumps(batch).encode(), DEVICES, NOW)
    assert len(out.rows) == 3
    assert [(r.reason, r.detail.split(":")[0]) for r in out.rejections] == [
        ("invalid_value", "reading 1"), ("non_finite_number", "reading 3")]
    assert b"blinking" in out.rejections[0].payload


def test_batch_size_limit() -> None:
    batch = [{"dateObserved": 1773486000000 + i * 1000} for i in range(11)]
    out = decode(topic("LAMP0001"), json.dumps(batch).encode(), DEVICES, NOW, Limits(max_batch_readings=10))
    assert [r.reason for r in out.rejections] == ["batch_too_large"]


def test_every_family_maps_to_its_table() -> None:
    cases = {
        "CAB01": ("lighting", {"voltage": {"R": 230, "S": 231, "T": 229.5}, "workingMode": "manual"},
                  "cabinet_readings"),
        "WM01": ("water", {"waterConsumption": 12.5, "alarms": ["tamper", "lowBattery"]}, "water_readings"),
        "TC01": ("traffic", {"laneId": 2, "intensity": 17, "congested": True}, "traffic_readings"),
        "AQ01": ("environment", {"pm25": 55.0, "LAeq": 71.0}, "environment_readings"),
    }
    for device, (family, fields, table) in cases.items():
        payload = json.dumps({"dateObserved": "2026-03-14T18:00:00+07:00", **fields}).encode()
        out = decode(topic(device, family), payload, DEVICES, NOW)
        assert out.rejections == [] and out.table == table and len(out.rows) == 1, (device, out.rejections)


def test_status_and_event_channels() -> None:
    offline = decode(topic("GW01", "gateway", "status"), b"offline", DEVICES, NOW, retained=True)
    assert (offline.status, offline.is_gateway, offline.status_retained) == ("offline", True, True)
    event = decode(topic("WM01", "water", "event"),
                   b'{"dateObserved": "2026-03-14T18:00:00+07:00", "eventType": "leak", "severity": "critical"}',
                   DEVICES, NOW)
    assert event.table == "device_events" and event.rows[0][2] == "leak"
    bad_event = decode(topic("WM01", "water", "event"), b'{"dateObserved": 1773486000000, "eventType": "x y"}',
                       DEVICES, NOW)
    assert [r.reason for r in bad_event.rejections] == ["invalid_value"]


def test_environment_reading_needs_a_measurement() -> None:
    out = decode(topic("AQ01", "environment"), b'{"dateObserved": 1773486000000}', DEVICES, NOW)
    assert [r.reason for r in out.rejections] == ["no_measurement"]


def test_depth() -> None:
    assert _depth(1) == 0 and _depth({}) == 1 and _depth([{"v": {"R": 1}}]) == 3
    nested: object = 1
    for _ in range(MAX_JSON_DEPTH + 5):
        nested = {"a": nested}
    assert _depth(nested) > MAX_JSON_DEPTH


def test_device_id_pre_scan_agrees_with_the_parser() -> None:
    from ioc.contract.topics import device_id_of, parse_topic

    good = topic("LAMP0001")
    assert device_id_of(good) == parse_topic(good).device_id == "LAMP0001"
    assert device_id_of("ioc/v1/dien-bien-phu/lighting/LAMP0001") == ""


def test_leading_whitespace_before_a_batch() -> None:
    out = decode(topic("LAMP0001"), b'  \n [{"dateObserved": 1773486000000}, {"dateObserved": 1773486060000}]',
                 DEVICES, NOW)
    assert out.rejections == [] and len(out.rows) == 2


def test_a_device_of_a_kind_this_version_does_not_know_is_rejected_not_raised() -> None:
    devices = {**DEVICES, "SOLAR1": DeviceInfo("solar_panel", "lighting", CITY)}
    out = decode(topic("SOLAR1"), b'{"dateObserved": 1773486000000}', devices, NOW)
    assert out.rows == [] and [r.reason for r in out.rejections] == ["unknown_kind"]
    assert "solar_panel" in out.rejections[0].detail
    # its events too: the registry row itself is what this version cannot vouch for
    event = decode(topic("SOLAR1", channel="event"), b'{"dateObserved": 1773486000000, "eventType": "x"}', devices, NOW)
    assert [r.reason for r in event.rejections] == ["unknown_kind"]


def test_one_message_yields_at_most_the_bound_of_rejections_plus_one_summary() -> None:
    good = json.dumps({"dateObserved": 1773486000000, "powerState": "on"})
    payload = ("[" + good + "," + ",".join(["0"] * 60_000 + ['"x"'] * 40_000) + "]").encode()
    limits = Limits(max_payload_bytes=1 << 20, max_batch_readings=200_000)
    out = decode(topic("LAMP0001"), payload, DEVICES, NOW, limits)
    assert len(out.rows) == 1  # the good reading is kept
    assert len(out.rejections) == MAX_DETAILED_REJECTIONS + 1
    assert [r.reason for r in out.rejections[:-1]] == ["wrong_type"] * MAX_DETAILED_REJECTIONS
    summary = out.rejections[-1]
    assert summary.reason == SUMMARY_REASON and summary.payload == payload
    assert "99980 more" in summary.detail and "wrong_type 99980" in summary.detail
    assert out.more is not None and out.more.total() == 99_980


def test_an_invalid_batch_beyond_the_reading_limit_is_one_rejection() -> None:
    payload = ("[" + ",".join(["0"] * 100_000) + "]").encode()  # the 200 KB `[0,0,0,…]`
    out = decode(topic("LAMP0001"), payload, DEVICES, NOW)
    assert [r.reason for r in out.rejections] == ["batch_too_large"]
