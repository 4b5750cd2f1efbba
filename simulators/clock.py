"""Simulation time: epoch seconds (int) internally, local time Asia/Ho_Chi_Minh (UTC+7, no DST) outside.

Vietnam has had no daylight-saving time since 1975, so local time is a fixed +07:00 offset and the hot
path can format timestamps with integer arithmetic instead of ``datetime``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
OFFSET_S = 7 * 3600
DAY = 86_400

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h30m``, ``2d`` or plain seconds → seconds."""
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_RE.findall(text)
    if not parts or _DURATION_RE.sub("", text).strip():
        raise ValueError(f"duration {text!r} is not like 90s, 15m, 1h30m or 2d")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_start(text: str | None) -> int:
    """ISO date or date-time (local time when no offset is given) → epoch seconds; None → now."""
    if text is None or text == "now":
        return int(time.time())
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=TZ)
    return int(parsed.timestamp())


def local_date(t: int) -> date:
    return date.fromordinal(719_163 + (t + OFFSET_S) // DAY)


def local_hour(t: int) -> float:
    """Local time of day in hours (0–24)."""
    return ((t + OFFSET_S) % DAY) / 3600.0


_hour_prefix: dict[int, str] = {}
# "MM:SS+07:00" for every second of an hour: a timestamp is then one dict lookup and one concatenation.
_MIN_SEC = tuple(f"{m:02d}:{s:02d}+07:00" for m in range(60) for s in range(60))


def iso_local(t: int) -> str:
    """``2026-03-14T18:05:00+07:00`` for epoch seconds ``t``, without building a datetime per call."""
    local = t + OFFSET_S
    hour, sec = divmod(local, 3600)
    prefix = _hour_prefix.get(hour)
    if prefix is None:
        day, h = divmod(hour, 24)
        prefix = _hour_prefix[hour] = f"{date.fromordinal(719_163 + day).isoformat()}T{h:02d}:"
    return prefix + _MIN_SEC[sec]


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def to_datetime(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


@dataclass(slots=True)
class SimClock:
    """Maps wall-clock time to simulation time: ``sim = start + (wall - wall0) × speed``."""

    start: int
    speed: float = 1.0
    wall0: float = 0.0

    def begin(self) -> None:
        self.wall0 = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self.wall0) * self.speed

    def wall_delay(self, sim_t: float) -> float:
        """Seconds of wall time until sim time ``sim_t`` (≤ 0 when already due)."""
        return (sim_t - self.now()) / self.speed


def shift(t: datetime, seconds: float) -> datetime:
    return t + timedelta(seconds=seconds)
