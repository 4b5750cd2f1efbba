"""The Grafana macro and variable expander against Grafana's documented and source-level behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    MacroError,
    TimeRange,
    VariableValue,
    calculate_interval,
    expand_sql_macros,
    format_interval,
    interpolate,
    parse_interval,
    rate_interval_ms,
    render_promql,
    render_sql,
    round_interval,
    seconds_to_hms,
    sql_variable,
)

START = datetime(2026, 3, 14, 11, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 14, 12, 30, 0, 500000, tzinfo=UTC)
RANGE = TimeRange(START, END)


@pytest.mark.parametrize("ms, rounded", [
    (5, 1), (12, 10), (30, 20), (7200, 5000), (60_000, 60_000), (172_800, 120_000), (400_000, 300_000),
    (1_209_600, 1_200_000), (5_184_000, 3_600_000), (100_000_000, 86_400_000), (700_000_000, 604_800_000),
    (2_000_000_000, 2_592_000_000), (4_000_000_000, 31_536_000_000),
])
def test_round_interval_follows_grafanas_table(ms: int, rounded: int) -> None:
    assert round_interval(ms) == rounded


def test_interval_is_range_over_max_data_points_raised_to_the_minimum() -> None:
    day = TimeRange(START, START + timedelta(days=1))
    assert calculate_interval(day, 500) == 120_000
    assert calculate_interval(day, 500, "5m") == 300_000
    assert calculate_interval(TimeRange(START, START + timedelta(hours=1)), 500) == 5_000
    assert calculate_interval(TimeRange(START, START + timedelta(days=30)), 1000, "1m") == 1_800_000


@pytest.mark.parametrize("text, ms", [("250ms", 250), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000),
                                      ("1d", 86_400_000), ("1w", 604_800_000), ("1.5h", 5_400_000)])
def test_parse_interval(text: str, ms: int) -> None:
    assert parse_interval(text) == ms


def test_parse_interval_refuses_nonsense() -> None:
    with pytest.raises(MacroError):
        parse_interval("five minutes")


def test_interval_text_forms() -> None:
    assert [seconds_to_hms(s) for s in (0.25, 30, 90, 3600, 5400, 86400 * 30, 31536000)] == \
        ["250ms", "30s", "1m", "1h", "1h", "30d", "1y"]
    assert [format_interval(ms) for ms in (500, 30_000, 120_000, 3_600_000, 86_400_000 * 7)] == \
        ["500ms", "30s", "2m", "1h", "7d"]


def test_time_macros() -> None:
    sql = "SELECT $__time(t), $__timeEpoch(t) WHERE $__timeFilter(t) AND x > $__timeFrom() AND x < $__timeTo()"
    assert expand_sql_macros(sql, RANGE, 60_000, False) == (
        "SELECT t AS \"time\", extract(epoch from t) as \"time\" WHERE t BETWEEN '2026-03-14T11:00:00Z' AND "
        "'2026-03-14T12:30:00.5Z' AND x > '2026-03-14T11:00:00Z' AND x < '2026-03-14T12:30:00.5Z'")


def test_time_group_plain_and_timescaledb() -> None:
    sql = "SELECT $__timeGroupAlias(time, $__interval), $__timeGroup(time, '5m') FROM t"
    assert expand_sql_macros(sql, RANGE, 120_000, False) == (
        'SELECT floor(extract(epoch from time)/120)*120 AS "time", floor(extract(epoch from time)/300)*300 FROM t')
    assert expand_sql_macros(sql, RANGE, 120_000, True) == (
        "SELECT time_bucket('120s',time) AS \"time\", time_bucket('300s',time) FROM t")


def test_interval_and_unix_epoch_macros() -> None:
    sql = ("SELECT $__interval_ms, '$__interval', $__unixEpochFrom(), $__unixEpochTo(), $__unixEpochFilter(ts), "
           "$__unixEpochGroupAlias(ts, 1h), $__unixEpochNanoFrom()")
    out = expand_sql_macros(sql, RANGE, 3_600_000, False)
    start, end = int(START.timestamp()), int(END.timestamp())
    assert out == (f"SELECT 3600000, '1h', {start}, {end}, ts >= {start} AND ts <= {end}, "
                   f'floor((ts)/3600)*3600 AS "time", {start * 1_000_000_000}')


def test_unknown_macro_is_an_error_as_in_grafana() -> None:
    with pytest.raises(MacroError, match="undefined macro"):
        expand_sql_macros("SELECT $__nope(x)", RANGE, 60_000, False)
    with pytest.raises(MacroError):
        expand_sql_macros("SELECT $__timeGroup(x)", RANGE, 60_000, False)


def test_sql_variable_formatting() -> None:
    single = VariableValue(["dien-bien-phu"])
    assert sql_variable(single) == "dien-bien-phu"
    assert sql_variable(VariableValue(["O'Neil"])) == "O''Neil"
    multi = VariableValue(["Mường Thanh", "Thanh An"], multi=True, include_all=True, all_value="'__all'")
    assert sql_variable(multi) == "'Mường Thanh','Thanh An'"
    assert sql_variable(VariableValue(["a'b"], multi=True)) == "'a''b'"
    all_custom = VariableValue([], multi=True, include_all=True, all_value="'__all'", all=True, options=["x"])
    assert sql_variable(all_custom) == "'__all'"  # verbatim, not quoted again
    all_options = VariableValue([], multi=True, include_all=True, all=True, options=["x", "y"])
    assert sql_variable(all_options) == "'x','y'"


def test_interpolate_syntaxes_and_leaves_macros_alone() -> None:
    variables = {"city": VariableValue(["dbp"]), "ward": VariableValue(["A", "B"], multi=True)}
    text = "$city ${city} [[city]] ($ward) $__timeFilter(time) $unknown $__interval_ms"
    out = interpolate(text, variables, {"__interval_ms": "60000", "__interval": "1m"})
    assert out == "dbp dbp dbp ('A','B') $__timeFilter(time) $unknown 60000"


def test_render_sql_end_to_end() -> None:
    sql = ("SELECT $__timeGroupAlias(time, $__interval), count(*) FROM t WHERE city = '$city' AND "
           "$__timeFilter(time) AND $__interval_ms < 900000 AND ward IN ($ward)")
    variables = {"city": VariableValue(["dbp"]), "ward": VariableValue(["A"], multi=True)}
    out = render_sql(sql, RANGE, 120_000, variables, timescaledb=True)
    assert out == ("SELECT time_bucket('120s',time) AS \"time\", count(*) FROM t WHERE city = 'dbp' AND time BETWEEN "
                   "'2026-03-14T11:00:00Z' AND '2026-03-14T12:30:00.5Z' AND 120000 < 900000 AND ward IN ('A')")


def test_promql_rate_interval() -> None:
    assert rate_interval_ms(60_000, 15_000) == 75_000
    assert rate_interval_ms(5_000, 15_000) == 60_000
    expr = "sum(rate(x_total[$__rate_interval])) / $__range_s + $__interval_ms"
    assert render_promql(expr, RANGE, 1_000, 15_000) == "sum(rate(x_total[60000ms])) / 5400 + 15000"
