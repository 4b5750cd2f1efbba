"""Panel presets: the options each panel type gets on the IOC wall (large values, legends as tables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboards.builder import JSON, Panel, Target, Thresholds

STAT_OPTIONS: JSON = {
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "colorMode": "background", "graphMode": "none", "justifyMode": "auto", "textMode": "auto",
    "orientation": "auto", "wideLayout": True, "showPercentChange": False,
}


def timeseries(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
               thresholds: Thresholds, bars: bool = False, stack: bool = False, **kw: Any) -> Panel:
    custom: JSON = {"drawStyle": "bars" if bars else "line", "lineWidth": 2, "fillOpacity": 60 if bars else 10,
                    "spanNulls": False, "showPoints": "never", "axisSoftMin": 0,
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    options: JSON = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"],
                                "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}}
    return Panel("timeseries", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 custom=custom, options=options, **kw)


def stat(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
         thresholds: Thresholds, per_row: bool = False, **kw: Any) -> Panel:
    """``per_row``: one value per result row (a table query), titled by its text column."""
    options = dict(STAT_OPTIONS, reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": per_row})
    kw.setdefault("width", 4)
    kw.setdefault("height", 5)
    return Panel("stat", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, **kw)


def gauge(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
          thresholds: Thresholds, **kw: Any) -> Panel:
    options: JSON = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                     "showThresholdMarkers": True, "showThresholdLabels": True, "orientation": "auto"}
    kw.setdefault("width", 6)
    return Panel("gauge", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, **kw)


def bargauge(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
             thresholds: Thresholds, **kw: Any) -> Panel:
    options: JSON = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                     "displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
                     "valueMode": "color", "namePlacement": "auto", "sizing": "auto"}
    return Panel("bargauge", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, **kw)


def table(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
          thresholds: Thresholds, sort_by: str | None = None, **kw: Any) -> Panel:
    options: JSON = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return Panel("table", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, custom={"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
                 **kw)


def piechart(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
             thresholds: Thresholds, **kw: Any) -> Panel:
    options: JSON = {"reduceOptions": {"calcs": ["sum"], "fields": "", "values": False}, "pieType": "donut",
                     "legend": {"displayMode": "table", "placement": "right", "values": ["value", "percent"],
                                "showLegend": True},
                     "tooltip": {"mode": "single", "sort": "none"}}
    return Panel("piechart", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, **kw)


def barchart(title: str, description: str, targets: Sequence[Target], *, unit: str, decimals: int,
             thresholds: Thresholds, stack: bool = False, **kw: Any) -> Panel:
    options: JSON = {"orientation": "auto", "xTickLabelRotation": 0, "showValue": "auto", "barWidth": 0.8,
                     "groupWidth": 0.7, "stacking": "normal" if stack else "none",
                     "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                     "tooltip": {"mode": "multi", "sort": "none"}}
    return Panel("barchart", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, custom={"fillOpacity": 80, "lineWidth": 1, "axisSoftMin": 0}, **kw)


def geomap(title: str, description: str, targets: Sequence[Target], layers: list[JSON], *, unit: str, decimals: int,
           thresholds: Thresholds, centre: tuple[float, float], zoom: int, **kw: Any) -> Panel:
    options: JSON = {
        "view": {"id": "coords", "lat": centre[0], "lon": centre[1], "zoom": zoom, "allLayers": True},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True, "showScale": True},
        "basemap": {"type": "osm-standard", "name": "OpenStreetMap", "config": {}},
        "layers": layers, "tooltip": {"mode": "details"},
    }
    return Panel("geomap", title, description, targets, unit=unit, decimals=decimals, thresholds=thresholds,
                 options=options, **kw)


def marker_layer(name: str, ref: str, size_field: str, colour: str, text_field: str | None = None) -> JSON:
    style: JSON = {"size": {"field": size_field, "fixed": 8, "min": 6, "max": 30},
                   "color": {"fixed": colour}, "opacity": 0.7, "symbol": {"fixed": "img/icons/marker/circle.svg",
                                                                          "mode": "fixed"}}
    if text_field:
        style["text"] = {"field": text_field, "mode": "field", "fixed": ""}
        style["textConfig"] = {"fontSize": 12, "offsetY": -16, "textAlign": "center", "textBaseline": "middle"}
    return {"type": "markers", "name": name, "config": {"showLegend": True, "style": style},
            "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
            "filterData": {"id": "byRefId", "options": ref}, "tooltip": True}
