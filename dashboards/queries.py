"""The panel queries of dashboard JSON, rendered as Grafana would send them (tests and the benchmark run them)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from dashboards.builder import JSON
from dashboards.lint import query_panels
from dashboards.macros import TimeRange, VariableValue, calculate_interval, render_promql, render_sql

RANGES: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "30d": timedelta(days=30)}
# Relations the dashboards read that another part of the system creates (the alert history, issue 8).
_RELATION_RE = re.compile(r"\bioc\.([a-z_0-9]+)\b(?!\s*\()")  # not functions


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel_id: int
    title: str
    panel_type: str
    ref: str
    language: str  # 'sql' or 'promql'
    text: str
    format: str  # 'table' / 'time_series' for SQL, '' for PromQL
    min_interval: str | None
    max_data_points: int

    @property
    def name(self) -> str:
        return f"{self.dashboard}/{self.panel_id}{self.ref} {self.title}"

    def relations(self) -> set[str]:
        return {f"ioc.{m}" for m in _RELATION_RE.findall(self.text)}

    def interval_ms(self, time_range: TimeRange) -> int:
        return calculate_interval(time_range, self.max_data_points, self.min_interval)

    def sql(self, time_range: TimeRange, variables: Mapping[str, VariableValue], timescaledb: bool) -> str:
        return render_sql(self.text, time_range, self.interval_ms(time_range), variables, timescaledb)

    def promql(self, time_range: TimeRange, scrape_ms: int,
               variables: Mapping[str, VariableValue] | None = None) -> str:
        return render_promql(self.text, time_range, self.interval_ms(time_range), scrape_ms, variables)


def panel_queries(dashboard: JSON) -> Iterator[PanelQuery]:
    for p in query_panels(dashboard):
        for t in p.get("targets", []):
            promql = "expr" in t
            yield PanelQuery(dashboard["uid"], p["id"], p["title"], p["type"], t["refId"],
                             "promql" if promql else "sql", t["expr"] if promql else t["rawSql"],
                             "" if promql else t["format"], p.get("interval"), int(p.get("maxDataPoints", 500)))


def variables_of(dashboard: JSON) -> list[JSON]:
    return list(dashboard.get("templating", {}).get("list", []))


def selection(dashboard: JSON, chosen: Mapping[str, Sequence[str] | None], options: Mapping[str, Sequence[str]]
              ) -> dict[str, VariableValue]:
    """Variable values for a dashboard: ``chosen[name]`` = the values picked, None = "All", missing = default."""
    out: dict[str, VariableValue] = {}
    for var in variables_of(dashboard):
        name = var["name"]
        default = var["current"]["value"]
        picked = chosen.get(name, default if isinstance(default, list) else [default])
        all_selected = picked is None or list(picked) == ["$__all"]
        out[name] = VariableValue(values=[] if all_selected or picked is None else list(picked),
                                  multi=bool(var.get("multi")), include_all=bool(var.get("includeAll")),
                                  all_value=var.get("allValue"), all=all_selected, options=options.get(name, ()))
    return out
