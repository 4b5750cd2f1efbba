"""Structural rules for dashboard JSON, run by the tests and by ``ioc dashboards build --check``.

Grafana's own linter (grafana/dashboard-linter) is a Go tool that cannot be installed here; the rules of it
that apply to provisioned SQL + Prometheus dashboards are encoded below, under its rule names, next to the
checks Grafana itself needs (unique ids, a grid that does not overlap):

- ``panel-title-description-rule``: every panel has a title and a description;
- ``panel-units-rule``: every panel sets a valid unit (here also: decimals and thresholds);
- ``panel-no-targets-rule``: every panel has queries;
- ``target-rate-interval-rule``: ``rate``/``irate``/``increase`` ranges are ``$__rate_interval``;
- ``target-counter-agg-rule``: counters (``_total``, ``_count``, ``_sum``, ``_bucket``) only inside
  ``rate``/``irate``/``increase``;
- ``uneditable-dashboard``: provisioned dashboards are not editable in the UI;
- ``template-datasource-rule`` / ``panel-datasource-rule`` are replaced by: every data source reference is a
  provisioned uid (the dashboards ship with their data sources; a datasource variable would add a choice the
  wall never needs);
- ``target-promql-rule`` (PromQL parses) is checked by the tests with ``promtool``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from dashboards.builder import GRID_COLUMNS, JSON, TIMEZONE

BUILTIN_VARIABLES = frozenset({
    "__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms", "__from", "__to",
    "__dashboard", "__org", "__user", "__all", "__timezone",
})
# Grafana unit ids the IOC dashboards may use (Grafana's valueFormats registry); "suffix:…" is a custom unit.
KNOWN_UNITS = frozenset({
    "none", "short", "percent", "percentunit", "s", "ms", "dtdurations", "bytes", "decbytes", "watt", "kwatt",
    "watth", "kwatth", "volt", "amp", "m3", "litre", "pressurebar", "velocitykmh", "celsius", "lengthm",
    "lengthmm", "dB", "bool_on_off", "bool", "ops", "reqps", "rps", "wps", "humidity", "ppm",
})
_VARIABLE_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::\w+)?\]\]|\$\{(\w+)(?:\.[^:^}]+)?(?::[^}]+)?\}")
_MACRO_CALL_RE = re.compile(r"\$__\w+\(")
_RANGE_FN_RE = re.compile(r"\b(rate|irate|increase)\s*\(([^\[]*)\[([^\]]+)\]")
_COUNTER_RE = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*_(?:total|count|sum|bucket))\b")


def panels(dashboard: JSON) -> list[JSON]:
    """Every panel, row headers included, and the panels of collapsed rows."""
    out: list[JSON] = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def query_panels(dashboard: JSON) -> list[JSON]:
    return [p for p in panels(dashboard) if p.get("type") != "row"]


def query_text(target: JSON) -> str:
    return str(target.get("rawSql") or target.get("expr") or "")


def used_variables(text: str) -> set[str]:
    text = _MACRO_CALL_RE.sub("(", text)  # $__timeFilter( … is a macro, not a variable
    return {m[1] or m[2] or m[3] for m in _VARIABLE_RE.finditer(text)} - BUILTIN_VARIABLES


def _overlap(a: JSON, b: JSON) -> bool:
    return bool(a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def _thresholds_ok(t: Any) -> bool:
    if not isinstance(t, dict) or t.get("mode") != "absolute":
        return False
    steps = t.get("steps") or []
    if not steps or steps[0].get("value") is not None or not all(s.get("color") for s in steps):
        return False
    values = [s["value"] for s in steps[1:]]
    return all(isinstance(v, int | float) for v in values) and values == sorted(values)


def _unit_ok(unit: Any) -> bool:
    return isinstance(unit, str) and (unit in KNOWN_UNITS or (unit.startswith("suffix:") and len(unit) > 7))


def lint(dashboard: JSON, datasource_uids: Iterable[str]) -> list[str]:
    """Problems with one dashboard, as ``"<where>: <what>"``; empty when it passes."""
    uids = set(datasource_uids) | {"-- Mixed --"}
    problems: list[str] = []
    name = dashboard.get("uid", "?")

    def problem(where: str, what: str) -> None:
        problems.append(f"{name} / {where}: {what}")

    if dashboard.get("editable") is not False:
        problem("dashboard", "provisioned dashboards must not be editable (uneditable-dashboard)")
    if dashboard.get("timezone") != TIMEZONE:
        problem("dashboard", f"timezone must be {TIMEZONE}")
    if not dashboard.get("description"):
        problem("dashboard", "no description")
    if not re.fullmatch(r"[a-z0-9-]{1,40}", str(dashboard.get("uid", ""))):
        problem("dashboard", "uid must be 1–40 characters [a-z0-9-]")

    all_panels = panels(dashboard)
    ids = [p.get("id") for p in all_panels]
    for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problem("panels", f"duplicate panel id {dup}")
    for p in all_panels:
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["w"] <= 0 or g["h"] <= 0 or g["x"] < 0 \
                or g["x"] + g["w"] > GRID_COLUMNS:
            problem(f"panel {p.get('id')}", f"bad gridPos {g}")
    for a, b in combinations(all_panels, 2):
        if _overlap(a["gridPos"], b["gridPos"]):
            problem(f"panels {a.get('id')} and {b.get('id')}", "overlap on the grid")

    for var in dashboard.get("templating", {}).get("list", []):
        ds = (var.get("datasource") or {}).get("uid")
        if var.get("type") == "query" and ds not in uids:
            problem(f"variable {var.get('name')}", f"data source {ds!r} is not provisioned")

    used: set[str] = set()
    for var in dashboard.get("templating", {}).get("list", []):
        used |= used_variables(str(var.get("query", ""))) - {var.get("name")}
    for p in query_panels(dashboard):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if not p.get("title"):
            problem(where, "no title (panel-title-description-rule)")
        if not p.get("description"):
            problem(where, "no description (panel-title-description-rule)")
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        if not _unit_ok(defaults.get("unit")):
            problem(where, f"unit {defaults.get('unit')!r} is not a Grafana unit (panel-units-rule)")
        if not isinstance(defaults.get("decimals"), int):
            problem(where, "decimals not set")
        if not _thresholds_ok(defaults.get("thresholds")):
            problem(where, "thresholds missing or not ascending")
        targets = p.get("targets") or []
        if not targets:
            problem(where, "no queries (panel-no-targets-rule)")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problem(where, "duplicate refId")
        for ds in [p.get("datasource") or {}] + [t.get("datasource") or {} for t in targets]:
            if ds.get("uid") not in uids:
                problem(where, f"data source {ds.get('uid')!r} is not provisioned")
        for t in targets:
            text = query_text(t)
            if not text.strip():
                problem(where, f"query {t.get('refId')} is empty")
            used |= used_variables(text)
            if "expr" in t:
                problems.extend(f"{name} / {where}: {e}" for e in promql_problems(text))
            elif t.get("format") not in ("table", "time_series") or not t.get("rawQuery"):
                problem(where, f"SQL query {t.get('refId')} must be raw with format table or time_series")
        if p.get("type") == "geomap":
            for layer in p.get("options", {}).get("layers", []):
                ref = layer.get("filterData", {}).get("options")
                if ref not in refs:
                    problem(where, f"geomap layer {layer.get('name')!r} reads query {ref!r}, which is not there")

    defined = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    for missing in sorted(used - defined):
        problem("variables", f"${missing} is used but not defined")
    for unused in sorted(defined - used, key=str):
        problem("variables", f"${unused} is defined but never used")
    return problems


def promql_problems(expr: str) -> list[str]:
    out = []
    for fn, _, window in _RANGE_FN_RE.findall(expr):
        if window.strip() != "$__rate_interval":
            out.append(f"{fn}() over [{window}]: use [$__rate_interval] (target-rate-interval-rule)")
    inside = {m[1] for m in re.finditer(r"\b(?:rate|irate|increase)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", expr)}
    for counter in _COUNTER_RE.findall(expr):
        if counter not in inside:
            out.append(f"counter {counter} used without rate/irate/increase (target-counter-agg-rule)")
    return out


def lint_all(dashboards: Iterable[JSON], datasource_uids: Iterable[str]) -> list[str]:
    uids = list(datasource_uids)
    out: list[str] = []
    seen: dict[str, int] = {}
    for d in dashboards:
        out.extend(lint(d, uids))
        seen[d.get("uid", "")] = seen.get(d.get("uid", ""), 0) + 1
    out.extend(f"{uid}: dashboard uid used {n} times" for uid, n in seen.items() if n > 1)
    return out
