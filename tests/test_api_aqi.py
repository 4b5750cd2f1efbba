"""VN_AQI (Decision 1459/QĐ-TCMT): breakpoints, NowCast, hourly and daily indices; dusk/dawn for lamps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.api.aqi import band, combine, daily_aqi, hourly_aqi, nowcast, sub_index
from services.api.sun import dawn_dusk, is_night


@pytest.mark.parametrize(("parameter", "concentration", "expected"), [
    ("pm25", 0, 0), ("pm25", 25, 50), ("pm25", 37.5, 75), ("pm25", 50, 100), ("pm25", 80, 150),
    ("pm25", 115, 175), ("pm25", 150, 200), ("pm25", 250, 300), ("pm25", 350, 400), ("pm25", 499.9, 500),
    ("pm25", 800, 500),
    ("pm10", 50, 100 // 2), ("pm10", 100, 75), ("pm10", 420, 300), ("pm10", 600, 500),
    ("o3_1h", 160, 50), ("o3_1h", 180, 75), ("o3_8h", 110, 75), ("co", 10_000, 50), ("co", 20_000, 75),
    ("so2", 125, 50), ("no2", 150, 75), ("no2", 3850, 500),
])
def test_sub_index_follows_the_breakpoint_table(parameter: str, concentration: float, expected: int) -> None:
    assert sub_index(parameter, concentration) == expected


def test_sub_index_rounds_half_up_and_refuses_nonsense() -> None:
    assert sub_index("pm25", 12.25) == 25  # 24.5 → 25
    assert sub_index("pm25", 12.24) == 24
    assert sub_index("pm25", None) is None and sub_index("pm25", -1) is None
    assert sub_index("o3_8h", 500) is None  # beyond its table: the 1-hour O3 index is used instead


def test_nowcast() -> None:
    assert nowcast([30.0] * 12) == pytest.approx(30.0)
    # steady rise: w* = 10/120 < 1/2 → w = 1/2, the newest hours dominate
    rising = [120.0, 110.0, 100.0, 90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0, 10.0]
    expected = sum(0.5**i * c for i, c in enumerate(rising)) / sum(0.5**i for i in range(12))
    assert nowcast(rising) == pytest.approx(expected)
    # w* above 1/2 is used as is
    mild = [60.0, 50.0, 40.0]
    w = 40 / 60
    assert nowcast(mild) == pytest.approx((60 + w * 50 + w * w * 40) / (1 + w + w * w))
    assert nowcast([None, None, 50.0, 50.0]) is None  # needs 2 of the 3 latest hours
    assert nowcast([50.0, None, 40.0]) is not None


def test_hourly_and_daily_indices() -> None:
    assert hourly_aqi({"o3": [100.0], "no2": [50.0]}) is None  # no particulates: no index
    h = hourly_aqi({"pm25": [40.0] * 12, "pm10": [60.0] * 12, "o3": [170.0], "co": [500.0]})
    assert h is not None and h.value == 80 and h.dominant == "pm25" and h.level == "moderate"
    assert h.sub_indices["o3"] == 63 and h.sub_indices["pm10"] == 55
    day = {"pm25": [20.0] * 24, "pm10": [40.0] * 24, "no2": [50.0] * 23 + [260.0],
           "o3": [50.0] * 16 + [200.0] * 8}
    d = daily_aqi(day)
    assert d is not None and d.dominant == "o3" and d.value == 188  # 8-h O3 mean 200 µg/m³: 150 + 50/40 × 30
    assert d.sub_indices["no2"] == 106 and d.sub_indices["pm25"] == 40
    assert daily_aqi({"pm25": [20.0] * 10}) is None  # fewer than 18 hours: no 24-hour mean
    assert band(51) == ("moderate", "Trung bình", "yellow") and band(301)[0] == "hazardous"
    assert combine({"pm10": 120, "o3": None}) is not None


def test_dusk_and_dawn_at_dien_bien_phu() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    dawn, dusk = dawn_dusk(datetime(2026, 3, 14, 12, tzinfo=tz), 21.386, 103.017, tz)
    assert (dawn.hour == 5 and 50 <= dawn.minute <= 59) or dawn.hour == 6
    assert dusk.hour == 18 and 30 <= dusk.minute <= 59
    assert is_night(datetime(2026, 3, 14, 22, tzinfo=tz), 21.386, 103.017, tz)
    assert not is_night(datetime(2026, 3, 14, 12, tzinfo=tz), 21.386, 103.017, tz)
