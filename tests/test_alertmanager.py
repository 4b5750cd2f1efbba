"""Alertmanager: the template renders from the environment, `amtool` accepts it and routes every kind of alert to
the right receivers, and a real Alertmanager (Debian's) applies the inhibitions when alerts are posted to it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ioc.settings import SettingsError
from ioc_cli.alerting import TEMPLATE, render
from testkit.prometheus import AlertmanagerServer, WebhookSink, wait_for

AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (scripts/ensure-system.sh)")
C = "dien-bien-phu"


def rendered(tmp_path: Path, **env: str) -> Path:
    token = tmp_path / "token"
    token.write_text("test-token\n")
    values = {"IOC_PAGER_WEBHOOK_URL": "https://pager.example.net/hooks/abc",
              "IOC_ALERT_WEBHOOK_TOKEN_FILE": str(token), **env}
    path = tmp_path / "alertmanager.yml"
    path.write_text(render(TEMPLATE.read_text(), values))
    return path


def test_template_needs_the_pager_url_and_checks_urls() -> None:
    with pytest.raises(SettingsError, match="IOC_PAGER_WEBHOOK_URL"):
        render(TEMPLATE.read_text(), {})
    with pytest.raises(SettingsError, match="IOC_ALERT_WEBHOOK_URL"):
        render(TEMPLATE.read_text(), {"IOC_PAGER_WEBHOOK_URL": "https://p/x", "IOC_ALERT_WEBHOOK_URL": "ftp://x"})
    text = render(TEMPLATE.read_text(), {"IOC_PAGER_WEBHOOK_URL": "https://pager.example.net/hooks/abc"})
    assert "url: 'https://pager.example.net/hooks/abc'" in text and "${IOC_PAGER" not in text


def test_amtool_accepts_the_rendered_config(tmp_path: Path) -> None:
    result = subprocess.run([str(AMTOOL), "check-config", str(rendered(tmp_path))], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


ROUTES = [
    # (labels, receivers)
    ({"alertname": "AreaOutage", "severity": "critical", "signal": "data", "city": C, "area": "CAB-0007"}, "page"),
    ({"alertname": "CabinetTripped", "severity": "critical", "city": C, "area": "CAB-0007"}, "page"),
    ({"alertname": "IngestDown", "severity": "critical", "signal": "platform", "area": "platform"}, "page"),
    ({"alertname": "RiverAboveAlarmLevel", "severity": "critical", "alarm_level": "III", "city": C}, "page"),
    ({"alertname": "RiverAboveAlarmLevel", "severity": "warning", "alarm_level": "I", "city": C}, "history"),
    ({"alertname": "PM25Above24hLimit", "severity": "warning", "city": C}, "history"),
    ({"alertname": "IngestLag", "severity": "warning", "area": "platform"}, "history"),
    ({"alertname": "AreaOutage", "severity": "critical", "city": "sim-festival", "area": "CAB-0007"}, "history"),
    ({"alertname": "Watchdog", "severity": "none"}, "history"),
    ({"alertname": "SomethingNew"}, "history"),
]


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[f"{r[0]['alertname']}-{r[1]}" for r in ROUTES])
def test_amtool_routes(tmp_path: Path, labels: dict[str, str], receiver: str) -> None:
    config = rendered(tmp_path)
    args = [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run([str(AMTOOL), "config", "routes", "test", f"--config.file={config}",
                             f"--verify.receivers={receiver}", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_routes_watchdog_to_the_deadman_receiver_when_configured(tmp_path: Path) -> None:
    config = rendered(tmp_path, IOC_DEADMAN_WEBHOOK_URL="https://hc.example.net/ping/xyz")
    result = subprocess.run([str(AMTOOL), "config", "routes", "test", f"--config.file={config}",
                             "--verify.receivers=deadman", "alertname=Watchdog"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AlertmanagerServer, WebhookSink]]:
    tmp = tmp_path_factory.mktemp("am")
    with WebhookSink() as sink:
        config = rendered(tmp, IOC_PAGER_WEBHOOK_URL=f"{sink.url}/pager", IOC_ALERT_WEBHOOK_URL=f"{sink.url}/api",
                          IOC_ALERT_GROUP_WAIT="1s", IOC_ALERT_GROUP_INTERVAL="2s")
        with AlertmanagerServer(config_path=config) as am:
            yield am, sink


def alert(name: str, severity: str, **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": name, "severity": severity, **labels}, "annotations": {"summary": name}}


# (sources, targets that must be inhibited, alerts that must stay active)
INHIBITIONS = [
    ("ingest down silences data alerts everywhere",
     [alert("IngestDown", "critical", signal="platform", area="platform")],
     [alert("AreaOutage", "critical", signal="data", city=C, area="CAB-0001", area_type="cabinet"),
      alert("RiverAboveAlarmLevel", "warning", signal="data", city="muong-lay", area="muong-lay", device="RG-09")],
     [alert("IngestLag", "warning", signal="platform", area="platform")]),
    ("database unreachable silences data alerts",
     [alert("DatabaseUnreachable", "critical", signal="platform", area="platform")],
     [alert("WaterPressureCollapse", "critical", signal="data", city=C, area="DMA-004", area_type="dma")],
     []),
    ("a tripped cabinet silences its own area outage, not another cabinet's",
     [alert("CabinetTripped", "critical", signal="data", city=C, area="CAB-0010", area_type="cabinet")],
     [alert("AreaOutage", "critical", signal="data", city=C, area="CAB-0010", area_type="cabinet")],
     [alert("AreaOutage", "critical", signal="data", city=C, area="CAB-0011", area_type="cabinet")]),
    ("an area outage silences the device alerts inside it",
     [alert("AreaOutage", "critical", signal="data", city=C, area="DMA-020", area_type="dma")],
     [alert("CriticalDeviceSilent", "warning", signal="data", city=C, area="DMA-020", device="NP-020-1")],
     [alert("CriticalDeviceSilent", "warning", signal="data", city=C, area="DMA-021", device="NP-021-1")]),
    ("a ward outage silences every data alert of the ward",
     [alert("AreaOutage", "critical", signal="data", city=C, ward="Him Lam", area="Him Lam", area_type="ward")],
     [alert("AreaOutage", "critical", signal="data", city=C, ward="Him Lam", area="CAB-0030", area_type="cabinet"),
      alert("PM25Above24hLimit", "warning", signal="data", city=C, ward="Him Lam", area="Him Lam", device="AQ-05")],
     [alert("PM25Above24hLimit", "warning", signal="data", city=C, ward="Thanh An", area="Thanh An",
            device="AQ-06")]),
    ("river level II silences level I of the same gauge only",
     [alert("RiverAboveAlarmLevel", "critical", signal="data", city=C, area=C, device="RG-01", alarm_level="II")],
     [alert("RiverAboveAlarmLevel", "warning", signal="data", city=C, area=C, device="RG-01", alarm_level="I")],
     [alert("RiverAboveAlarmLevel", "warning", signal="data", city=C, area=C, device="RG-02", alarm_level="I")]),
    ("a burst silences the pressure collapse of its DMA",
     [alert("WaterMainBurstSuspected", "critical", signal="data", city=C, area="DMA-030", area_type="dma")],
     [alert("WaterPressureCollapse", "critical", signal="data", city=C, area="DMA-030", area_type="dma")],
     []),
]


@pytest.mark.parametrize(("sources", "targets", "active"), [case[1:] for case in INHIBITIONS],
                         ids=[case[0] for case in INHIBITIONS])
def test_inhibition_in_a_real_alertmanager(alertmanager: tuple[AlertmanagerServer, WebhookSink],
                                           sources: list[dict[str, object]], targets: list[dict[str, object]],
                                           active: list[dict[str, object]], request: pytest.FixtureRequest) -> None:
    am, _ = alertmanager
    tag = request.node.callspec.id
    for a in (*sources, *targets, *active):
        a["labels"]["case"] = tag  # type: ignore[index]  # keep parametrised cases apart in one Alertmanager
    am.post_alerts([*sources, *targets, *active])

    def states() -> dict[str, dict[str, object]]:
        return {str(sorted(a["labels"].items())): a["status"] for a in am.alerts(filters=[f'case="{tag}"'])}

    def key(a: dict[str, object]) -> str:
        return str(sorted(a["labels"].items()))  # type: ignore[attr-defined]

    # inhibition is evaluated as alerts arrive; wait until every posted alert is known, then until it settles
    wait_for(lambda: len(states()) == len(sources) + len(targets) + len(active), 10, what="alerts registered")
    def inhibited() -> dict[str, dict[str, object]] | None:
        now = states()
        return now if all(now[key(t)]["inhibitedBy"] for t in targets) else None

    try:
        status = wait_for(inhibited, 10, what="targets inhibited")
        for source in (*sources, *active):
            assert status[key(source)]["state"] == "active" and not status[key(source)]["inhibitedBy"], source
    finally:  # resolve everything: the next case shares this Alertmanager
        now = datetime.now(UTC).isoformat()
        am.post_alerts([{**a, "endsAt": now} for a in (*sources, *targets, *active)])
        wait_for(lambda: not states(), 10, what="alerts resolved")


def test_one_page_per_group_and_a_resolve(alertmanager: tuple[AlertmanagerServer, WebhookSink]) -> None:
    am, sink = alertmanager
    page = {"alertname": "CabinetTripped", "severity": "critical", "signal": "data", "city": C, "area": "CAB-0099",
            "area_type": "cabinet", "case": "page"}
    am.post_alerts([{"labels": page}])

    def pages(status: str) -> list[dict[str, object]]:
        return [n for n in sink.notifications("/pager")
                if n["groupLabels"].get("area") == "CAB-0099" and n["status"] == status]

    wait_for(lambda: pages("firing"), 15, what="page sent")
    am.post_alerts([{"labels": page}])  # Prometheus re-sends firing alerts every evaluation: no second page
    am.post_alerts([{"labels": page, "endsAt": datetime.now(UTC).isoformat()}])
    wait_for(lambda: pages("resolved"), 15, what="resolve sent")
    assert len(pages("firing")) == 1 and len(pages("resolved")) == 1
    api = [n for n in sink.notifications("/api") if n["groupLabels"].get("area") == "CAB-0099"]
    assert api and sink.headers("/api")[0].get("Authorization") == "Bearer test-token"


def test_cli_renders_to_a_private_file_and_exits_2_without_the_pager(tmp_path: Path) -> None:
    import os
    import sys

    base = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    missing = subprocess.run([sys.executable, "-m", "ioc_cli", "alertmanager-config"], env=base,
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "IOC_PAGER_WEBHOOK_URL" in missing.stderr
    out = tmp_path / "am.yml"
    ok = subprocess.run([sys.executable, "-m", "ioc_cli", "alertmanager-config", "--out", str(out)],
                        env={**base, "IOC_PAGER_WEBHOOK_URL": "https://pager.example.net/x"}, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert out.stat().st_mode & 0o077 == 0
    assert "https://pager.example.net/x" in out.read_text()
