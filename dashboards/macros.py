"""What Grafana does to a panel query before the data source runs it, reproduced so tests can run the query.

Three steps, in Grafana's order:

1. ``$__interval`` for the panel (frontend ``calculateInterval``): range / maxDataPoints, rounded by Grafana's
   ``roundInterval`` table, raised to the panel's minimum interval; text form by ``secondsToHms``.
2. Template variables (frontend ``templateSrv.replace`` with the SQL data source's ``interpolateVariable``):
   ``$name``, ``${name}``, ``[[name]]``. A multi-value or include-All variable becomes single-quoted
   literals joined by commas; a single-value one is inserted with ``'`` doubled; "All" with a custom
   ``allValue`` inserts that text verbatim, without quoting.
3. SQL macros (backend ``sqleng.Interpolate`` then the PostgreSQL macro engine): ``$__interval_ms``,
   ``$__interval``, ``$__unixEpochFrom()``/``To()``, then ``$__time``, ``$__timeEpoch``, ``$__timeFilter``,
   ``$__timeFrom``/``To``, ``$__timeGroup``/``Alias`` (``time_bucket`` when the data source's TimescaleDB
   toggle is on), ``$__unixEpochFilter``/``NanoFilter``/``NanoFrom``/``NanoTo``, ``$__unixEpochGroup``/``Alias``.
   An unknown macro is an error, as in Grafana.

For PromQL, ``prom_interpolate`` expands ``$__interval``, ``$__rate_interval`` (max(interval + scrape
interval, 4 × scrape interval)), ``$__range`` and the template variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Grafana's roundInterval: (upper bound ms, rounded ms), first match wins; above the table: 1 year.
_ROUND = ((10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
          (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
          (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000),
          (1500000, 1200000), (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
          (16200000, 10800000), (32400000, 21600000), (86400000, 43200000), (172800000, 86400000),
          (604800000, 86400000), (1814400000, 604800000))
_YEAR_MS = 31536000000
_MONTH_MS = 2592000000

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000,
             "M": 2592000000, "y": 31536000000}
_INTERVAL_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$")
# templateSrv's variable syntax: $name, [[name(:format)]], ${name(.path)(:format)}
_VARIABLE_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
_MACRO_RE = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")


class MacroError(ValueError):
    pass


def round_interval(ms: float) -> int:
    for bound, rounded in _ROUND:
        if ms <= bound:
            return rounded
    return _MONTH_MS if ms < 3628800000 else _YEAR_MS


def parse_interval(text: str) -> int:
    """gtime.ParseInterval / the frontend's intervalToMs: '30s', '5m', '1h', '1d', '1w', '250ms' → ms."""
    match = _INTERVAL_RE.match(text.strip())
    if not match:
        raise MacroError(f"invalid interval {text!r}")
    return round(float(match[1]) * _UNITS_MS[match[2]])


def seconds_to_hms(seconds: float) -> str:
    """The frontend's secondsToHms: the largest whole unit only (90 s → '1m', 30 days → '30d')."""
    rest = seconds % 31536000
    parts = ((seconds // 31536000, "y"), (rest // 86400, "d"), (rest % 86400 // 3600, "h"),
             (rest % 86400 % 3600 // 60, "m"), (rest % 86400 % 3600 % 60 // 1, "s"))
    for n, unit in parts:
        if n:
            return f"{int(n)}{unit}"
    ms = int(seconds * 1000)
    return f"{ms}ms" if ms else "less than a millisecond"


def format_interval(ms: int) -> str:
    """gtime.FormatInterval (backend): the largest unit that fits, truncated."""
    for size, unit in ((_YEAR_MS, "y"), (86400000, "d"), (3600000, "h"), (60000, "m"), (1000, "s"), (1, "ms")):
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> TimeRange:
        end = (now or datetime.now(UTC)).astimezone(UTC)
        return cls(end - span, end)

    @property
    def ms(self) -> float:
        return (self.end - self.start).total_seconds() * 1000


def calculate_interval(time_range: TimeRange, max_data_points: int, min_interval: str | None = None) -> int:
    """The panel's $__interval in ms (frontend calculateInterval)."""
    interval = round_interval(time_range.ms / max_data_points)
    low = parse_interval(min_interval) if min_interval else 1
    return max(interval, low)


@dataclass(frozen=True)
class VariableValue:
    """A variable's current selection: ``values`` (or ``all`` selected) and how the variable is defined."""
    values: Sequence[str]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    all: bool = False
    options: Sequence[str] = ()  # every option: what "All" expands to without an allValue


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_variable(value: VariableValue) -> str:
    if value.all:
        if value.all_value is not None:
            return value.all_value  # inserted verbatim (templateSrv skips formatting of custom all values)
        values: Sequence[str] = value.options
    else:
        values = value.values
    if value.multi or value.include_all:
        return ",".join(_quote_literal(v) for v in values)
    return str(values[0]).replace("'", "''") if values else ""


def prom_variable(value: VariableValue) -> str:
    """The Prometheus data source's interpolateQueryExpr: a single-value variable has ``\\`` and ``'`` escaped;
    a multi-value one becomes a regex alternation of regex-escaped values."""
    if value.all and value.all_value is not None:
        return value.all_value
    values = value.options if value.all else value.values
    if not (value.multi or value.include_all):
        return values[0].replace("\\", "\\\\").replace("'", "\\\\'") if values else ""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values]
    return "(" + "|".join(escaped) + ")"


def interpolate(text: str, variables: Mapping[str, VariableValue], builtins: Mapping[str, str],
                prom: bool = False) -> str:
    """templateSrv.replace: unknown names (Grafana macros such as ``$__timeFilter``) are left untouched."""
    def repl(m: re.Match[str]) -> str:
        name = m[1] or m[2] or m[4]
        if name in builtins:
            return builtins[name]
        if name in variables:
            return prom_variable(variables[name]) if prom else sql_variable(variables[name])
        return m[0]
    return _VARIABLE_RE.sub(repl, text)


def _rfc3339(t: datetime) -> str:
    """Go's time.RFC3339Nano for a UTC time: fraction without trailing zeros, 'Z'."""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += ("." + f"{t.microsecond:06d}").rstrip("0")
    return text + "Z"


def _go_float(x: float) -> str:
    """Go's %v for a float64 (enough for interval seconds: integral values print without a point)."""
    return str(int(x)) if x == int(x) else repr(x)


def expand_sql_macros(sql: str, time_range: TimeRange, interval_ms: int, timescaledb: bool) -> str:
    start, end = time_range.start.astimezone(UTC), time_range.end.astimezone(UTC)
    # sqleng.Interpolate
    sql = sql.replace("$__interval_ms", str(interval_ms))
    sql = sql.replace("$__interval", format_interval(interval_ms))
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))

    def group(args: list[str]) -> str:
        if len(args) < 2:
            raise MacroError(f"macro $__timeGroup needs time column and interval, got {args}")
        seconds = parse_interval(args[1].strip("'")) / 1000
        if timescaledb:
            return f"time_bucket('{seconds:.0f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"

    def macro(m: re.Match[str]) -> str:
        name, args = m[1], [a.strip(" ") for a in m[2].split(",")]
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'"
        if name == "__timeFrom":
            return f"'{_rfc3339(start)}'"
        if name == "__timeTo":
            return f"'{_rfc3339(end)}'"
        if name == "__timeGroup":
            return group(args)
        if name == "__timeGroupAlias":
            return group(args) + ' AS "time"'
        if name == "__unixEpochFilter":
            return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
        if name == "__unixEpochNanoFilter":
            return f"{args[0]} >= {_nanos(start)} AND {args[0]} <= {_nanos(end)}"
        if name == "__unixEpochNanoFrom":
            return str(_nanos(start))
        if name == "__unixEpochNanoTo":
            return str(_nanos(end))
        if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
            if len(args) < 2:
                raise MacroError(f"macro ${name} needs time column and interval")
            seconds = _go_float(parse_interval(args[1].strip("'")) / 1000)
            out = f"floor(({args[0]})/{seconds})*{seconds}"
            return out + ' AS "time"' if name.endswith("Alias") else out
        raise MacroError(f"undefined macro: ${name}")

    return _MACRO_RE.sub(macro, sql)


def _nanos(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def sql_builtins(time_range: TimeRange, interval_ms: int) -> dict[str, str]:
    """The frontend's built-in variables (scopedVars) for a query."""
    return {"__interval": seconds_to_hms(interval_ms / 1000), "__interval_ms": str(interval_ms),
            "__from": str(int(time_range.start.timestamp() * 1000)),
            "__to": str(int(time_range.end.timestamp() * 1000))}


def render_sql(sql: str, time_range: TimeRange, interval_ms: int, variables: Mapping[str, VariableValue],
               timescaledb: bool) -> str:
    """A SQL panel query as PostgreSQL receives it from Grafana."""
    text = interpolate(sql, variables, sql_builtins(time_range, interval_ms))
    return expand_sql_macros(text, time_range, interval_ms, timescaledb)


def rate_interval_ms(interval_ms: int, scrape_ms: int) -> int:
    return max(interval_ms + scrape_ms, 4 * scrape_ms)


def render_promql(expr: str, time_range: TimeRange, interval_ms: int, scrape_ms: int,
                  variables: Mapping[str, VariableValue] | None = None) -> str:
    """A PromQL panel query as Prometheus receives it (interval no lower than the scrape interval)."""
    interval_ms = max(interval_ms, scrape_ms)
    builtins = {"__interval": seconds_to_hms(interval_ms / 1000), "__interval_ms": str(interval_ms),
                "__rate_interval": f"{rate_interval_ms(interval_ms, scrape_ms)}ms",
                "__range": f"{round(time_range.ms / 1000)}s", "__range_s": str(round(time_range.ms / 1000)),
                "__range_ms": str(round(time_range.ms))}
    return interpolate(expr, variables or {}, builtins, prom=True)
