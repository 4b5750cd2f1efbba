"""Fleet files: sizes, coverage of every kind, structure, determinism, and import through the registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ioc.contract.kinds import KINDS
from ioc.registry import read_devices
from simulators.cli import app
from simulators.fleet import build_fleet, fleet_jsonl, spec_for


def test_smoke_fleet_covers_every_kind() -> None:
    fleet = build_fleet("smoke", 1)
    assert 180 <= len(fleet) <= 220
    assert set(Counter(d.kind for d in fleet)) == set(KINDS)
    assert {d.ward for d in fleet if d.ward} == {"Điện Biên Phủ", "Mường Thanh", "Thanh An"}


def test_city_fleet_has_the_design_sizes() -> None:
    fleet = build_fleet("city", 1)
    kinds = Counter(d.kind for d in fleet)
    assert 39_000 <= len(fleet) <= 42_000
    assert kinds["streetlight"] == 15_000 and kinds["meter"] == 25_000 and kinds["counter"] == 60
    assert sum(kinds[k] for k in ("air_quality", "noise", "weather", "river_gauge")) == 40
    assert kinds["river_gauge"] > 0 and kinds["network_point"] > 0
    ids = [d.device_id for d in fleet]
    assert len(set(ids)) == len(ids)
    # Grouped behind gateways: a live run needs a few hundred connections, not 40 000.
    gateways = {d.device_id for d in fleet if d.kind == "gateway"}
    owners = {d.gateway_id or d.device_id for d in fleet}
    assert len(owners) <= 300
    assert {d.gateway_id for d in fleet if d.gateway_id} == gateways
    cabinets = {d.device_id for d in fleet if d.kind == "cabinet"}
    assert all(d.parent_id in cabinets for d in fleet if d.kind == "streetlight")
    lanes = [d.metadata["lanes"] for d in fleet if d.kind == "counter"]
    assert min(lanes) >= 2 and max(lanes) <= 6
    # Real-ish coordinates around the centre (21.386 N, 103.017 E).
    assert all(21.30 < d.lat < 21.45 and 102.95 < d.lon < 103.09 for d in fleet if d.lat is not None and d.lon)


def test_numeric_sizes_scale() -> None:
    assert 900 <= len(build_fleet(1000, 1)) <= 1100
    assert spec_for("district").total == len(build_fleet("district", 1))
    with pytest.raises(ValueError):
        spec_for("huge")


def test_fleet_is_deterministic_and_seeded() -> None:
    a = fleet_jsonl(build_fleet("smoke", 1))
    assert a == fleet_jsonl(build_fleet("smoke", 1))
    assert a != fleet_jsonl(build_fleet("smoke", 2))


def test_cli_writes_a_fleet_file_the_registry_imports(tmp_path: Path) -> None:
    out = tmp_path / "smoke.jsonl"
    result = CliRunner().invoke(app, ["fleet", "--size", "smoke", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    devices = list(read_devices(out))
    assert [d.device_id for d in devices] == [d.device_id for d in build_fleet("smoke", 3)]


def test_city_fleet_file_imports(tmp_path: Path) -> None:
    out = tmp_path / "city.jsonl"
    out.write_bytes(fleet_jsonl(build_fleet("city", 1)))
    assert sum(1 for _ in read_devices(out)) == len(build_fleet("city", 1))


def test_scenarios_command_lists_the_catalogue() -> None:
    result = CliRunner().invoke(app, ["scenarios"])
    assert result.exit_code == 0
    assert "cabinet-trip" in result.output and "festival-jam" in result.output


def test_cli_backfill_dry_run_reports_rate() -> None:
    result = CliRunner().invoke(app, ["backfill", "--fleet", "smoke", "--days", "0.5", "--start", "2026-03-10",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "readings/s" in result.output and "dry run" in result.output


def test_cli_rejects_unknown_scenario_and_fleet() -> None:
    result = CliRunner().invoke(app, ["backfill", "--fleet", "smoke", "--dry-run", "--scenario", "nope"])
    assert result.exit_code == 2 and "unknown scenario" in result.output
    result = CliRunner().invoke(app, ["backfill", "--fleet", "/no/such.jsonl", "--dry-run"])
    assert result.exit_code == 2
