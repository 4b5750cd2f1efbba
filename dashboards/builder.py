"""Small typed builders for the Grafana dashboard JSON model (schemaVersion 39, Grafana 10.4 / 11).

Why our own builders and not ``grafana-foundation-sdk`` (it is on PyPI here, version ``1769699998!10.1.0``):
the SDK is generated from Grafana's schemas and re-released per Grafana version under a timestamp epoch,
so its API and its output change with every bump, and the committed JSON would churn with it. It also
emits every default of every field, which makes reviewing a diff of the committed JSON hard. The IOC needs
seven panel types; what matters here is what the SDK does not do: every panel *must* carry a unit, decimals,
thresholds and a description (the constructors below require them), and the queries must stay reachable as
plain data so the tests can expand and execute each one. ~200 lines of dataclasses do that and emit only
the fields we set, in a stable order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]

POSTGRES = {"type": "grafana-postgresql-datasource", "uid": "ioc-postgres"}
PROMETHEUS = {"type": "prometheus", "uid": "ioc-prometheus"}
TIMEZONE = "Asia/Ho_Chi_Minh"
GRID_COLUMNS = 24

# Grafana palette names used for thresholds.
GREEN, YELLOW, ORANGE, RED, PURPLE, MAROON, BLUE = "green", "yellow", "orange", "red", "purple", "#7e0023", "blue"


@dataclass(frozen=True)
class Thresholds:
    """Absolute thresholds: ``base`` colour below the first step, then (value, colour) steps ascending."""
    base: str
    steps: tuple[tuple[float, str], ...] = ()
    show: Literal["off", "line", "area", "line+area"] = "off"  # drawn on time series (e.g. QCVN limits)

    def to_json(self) -> JSON:
        return {"mode": "absolute",
                "steps": [{"color": self.base, "value": None}, *({"color": c, "value": v} for v, c in self.steps)]}


@dataclass(frozen=True)
class SqlTarget:
    sql: str
    format: Literal["time_series", "table"] = "table"

    def to_json(self, ref: str) -> JSON:
        return {"refId": ref, "datasource": POSTGRES, "editorMode": "code", "format": self.format,
                "rawQuery": True, "rawSql": self.sql.strip()}


@dataclass(frozen=True)
class PromTarget:
    expr: str
    legend: str = "__auto"
    instant: bool = False

    def to_json(self, ref: str) -> JSON:
        return {"refId": ref, "datasource": PROMETHEUS, "editorMode": "code", "expr": self.expr.strip(),
                "legendFormat": self.legend, "range": not self.instant, "instant": self.instant}


Target = SqlTarget | PromTarget
PanelType = Literal["timeseries", "stat", "gauge", "bargauge", "table", "geomap", "piechart", "barchart"]


@dataclass
class Panel:
    """One panel. ``unit``, ``decimals``, ``thresholds`` and ``description`` are required on purpose."""
    type: PanelType
    title: str  # Vietnamese, as the operators read it
    description: str  # English: what it shows, from where, and what the thresholds mean
    targets: Sequence[Target]
    unit: str
    decimals: int
    thresholds: Thresholds
    width: int = 8
    height: int = 8
    min: float | None = None
    max: float | None = None
    options: JSON = field(default_factory=dict)
    custom: JSON = field(default_factory=dict)  # fieldConfig.defaults.custom
    overrides: list[JSON] = field(default_factory=list)
    color: JSON | None = None
    interval: str = "1m"  # lower limit of $__interval: the fastest devices report every minute
    max_data_points: int = 500  # fixes $__interval = range / 500 (rounded), independent of screen width
    # set by Dashboard.layout
    id: int = 0
    grid: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, w, h

    @property
    def datasource(self) -> JSON:
        kinds = {type(t) for t in self.targets}
        if kinds == {PromTarget}:
            return PROMETHEUS
        if kinds == {SqlTarget}:
            return POSTGRES
        return {"type": "datasource", "uid": "-- Mixed --"}

    def to_json(self) -> JSON:
        custom = dict(self.custom)
        if self.type == "timeseries" and self.thresholds.show != "off":
            custom["thresholdsStyle"] = {"mode": self.thresholds.show}
        defaults: JSON = {"unit": self.unit, "decimals": self.decimals, "thresholds": self.thresholds.to_json(),
                          "mappings": []}
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        defaults["color"] = self.color or ({"mode": "thresholds"} if self.type in ("stat", "gauge", "bargauge")
                                           else {"mode": "palette-classic"})
        if custom:
            defaults["custom"] = custom
        x, y, w, h = self.grid
        out: JSON = {
            "id": self.id, "type": self.type, "title": self.title, "description": self.description,
            "gridPos": {"h": h, "w": w, "x": x, "y": y}, "datasource": self.datasource,
            "interval": self.interval, "maxDataPoints": self.max_data_points,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
        }
        return out


@dataclass(frozen=True)
class Variable:
    """A query variable on the PostgreSQL data source."""
    name: str
    label: str
    description: str
    query: str
    default: str | list[str]
    multi: bool = False
    all_value: str | None = None  # set ⇒ includeAll, and "All" is replaced by this text verbatim

    def to_json(self) -> JSON:
        default = self.default
        current = {"selected": True, "text": "All" if default == ["$__all"] else default,
                   "value": default}
        out: JSON = {
            "name": self.name, "label": self.label, "description": self.description, "type": "query",
            "datasource": POSTGRES, "query": self.query.strip(), "definition": self.query.strip(),
            "refresh": 1, "sort": 0, "hide": 0, "multi": self.multi, "includeAll": self.all_value is not None,
            "current": current, "options": [], "regex": "", "skipUrlSync": False,
        }
        if self.all_value is not None:
            out["allValue"] = self.all_value
        return out


@dataclass
class Row:
    """A collapsible-free row header; panels after it are laid out below it."""
    title: str


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    folder: str  # provisioning folder (directory under deploy/grafana/dashboards/)
    variables: Sequence[Variable]
    items: Sequence[Panel | Row]
    tags: tuple[str, ...] = ("ioc",)
    time_from: str = "now-24h"
    refresh: str = "1m"

    def layout(self) -> tuple[list[Panel], list[JSON]]:
        """Flow panels left to right, wrapping at 24 columns; a row header starts a new line.
        Returns the panels (ids and grid set) and the row headers' JSON."""
        panels: list[Panel] = []
        rows: list[JSON] = []
        x = y = line_h = 0
        for item in self.items:
            if isinstance(item, Row):
                y += line_h
                x = line_h = 0
                rows.append({"id": 100 + len(rows), "type": "row", "title": item.title, "collapsed": False,
                             "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y}, "panels": []})
                y += 1
                continue
            if x + item.width > GRID_COLUMNS:
                y += line_h
                x = line_h = 0
            item.grid = (x, y, item.width, item.height)
            item.id = len(panels) + 1
            x += item.width
            line_h = max(line_h, item.height)
            panels.append(item)
        return panels, rows

    def panels(self) -> list[Panel]:
        return self.layout()[0]

    def to_json(self) -> JSON:
        panels, rows = self.layout()
        merged = sorted([p.to_json() for p in panels] + rows, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
        return {
            "uid": self.uid, "title": self.title, "description": self.description, "tags": list(self.tags),
            "timezone": TIMEZONE, "weekStart": "monday", "editable": False, "graphTooltip": 1,
            "schemaVersion": 39, "version": 1, "refresh": self.refresh, "liveNow": False,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "annotations": {"list": []},
            "links": [{"type": "dashboards", "tags": ["ioc"], "asDropdown": True, "title": "Bảng điều khiển IOC",
                       "includeVars": True, "keepTime": True}],
            "templating": {"list": [v.to_json() for v in self.variables]},
            "panels": merged,
        }
