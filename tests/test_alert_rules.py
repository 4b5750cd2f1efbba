"""The Prometheus rules: promtool accepts them, promtool's unit tests pass and cover every rule, every alert has
the labels and annotations operators rely on, and the unit tests catch a changed rule."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (scripts/ensure-system.sh)")


def alert_rules() -> list[dict[str, Any]]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def rule_tests() -> list[dict[str, Any]]:
    return [case for path in TESTS for test in yaml.safe_load(path.read_text())["tests"]
            for case in test["alert_rule_test"]]


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", *TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = rule_tests()
    for name in {rule["alert"] for rule in alert_rules()} - {"Watchdog"}:  # Watchdog never stays quiet
        fired = [c for c in cases if c["alertname"] == name and c.get("exp_alerts")]
        quiet = [c for c in cases if c["alertname"] == name and not c.get("exp_alerts")]
        assert fired, f"{name}: no promtool case where it fires"
        assert quiet, f"{name}: no promtool case where it stays quiet (before for:, resolved, flapping)"
    # every rule variant (e.g. each river alarm level, cabinet vs ward outage) fires in some case
    fired_labels = [a["exp_labels"] for c in cases for a in c.get("exp_alerts") or []]
    for rule in alert_rules():
        fixed = {k: v for k, v in rule.get("labels", {}).items() if "{{" not in str(v)}
        assert any(all(labels.get(k) == v for k, v in fixed.items()) for labels in fired_labels
                   if labels), f"{rule['alert']} {fixed}: no promtool case fires this rule"


def test_every_alert_carries_operator_labels_and_annotations() -> None:
    for rule in alert_rules():
        name, labels, annotations = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in {"critical", "warning", "none"}, name
        assert labels.get("signal") in {"platform", "data"}, name
        assert {"summary", "description", "where", "runbook"} <= set(annotations), name
        if name != "Watchdog":
            assert "for" in rule, f"{name} has no for:"
        if labels["signal"] == "data":
            assert 'city!~"sim-.*"' in rule["expr"], f"{name} does not exclude sandbox cities"
    # area on every alert: fixed in the rule, or from the series (checked on what the unit tests saw firing)
    for case in rule_tests():
        for alert in case.get("exp_alerts") or []:
            assert ("area" in alert["exp_labels"] and "area_type" in alert["exp_labels"]) or \
                case["alertname"] in ("CriticalDeviceSilent", "RiverAboveAlarmLevel", "PM25Above24hLimit"), case
            assert "area" in alert["exp_labels"], case


@pytest.mark.parametrize(("alert", "old", "new"), [
    ("AreaOutage", "for: 5m", "for: 3m"),               # fires too early
    ("CabinetTripped", "keep_firing_for: 10m", "keep_firing_for: 1m"),  # resolves too early
    ("RiverAboveAlarmLevel", 'level="2"', 'level="3"'),  # wrong alarm level
])
def test_unit_tests_catch_a_changed_rule(tmp_path: Path, alert: str, old: str, new: str) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULES:
        text = path.read_text()
        if path.name == "fleet.yml":
            start = text.index(f"- alert: {alert}")
            end = start + text[start:].index(old) + len(old)
            text = text[:start] + text[start:end].replace(old, new) + text[end:]
        (tmp_path / "rules" / path.name).write_text(text)
    for path in TESTS:
        shutil.copy(path, tmp_path / "tests" / path.name)
    result = promtool("test", "rules", tmp_path / "tests" / "fleet_test.yml")
    assert result.returncode != 0
    assert alert in result.stderr + result.stdout


def test_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", ROOT / "deploy" / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
