"""``ioc alertmanager-config``: render deploy/alertmanager/alertmanager.yml with the receivers' URLs from the
environment (Alertmanager cannot read them from the environment itself)."""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from ioc.settings import SettingsError

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "alertmanager" / "alertmanager.yml"

DEFAULTS = {
    "IOC_ALERT_WEBHOOK_URL": "http://127.0.0.1:8000/v1/alerts/webhook",
    "IOC_ALERT_WEBHOOK_TOKEN_FILE": "/etc/ioc/alert-webhook.token",
    "IOC_DEADMAN_WEBHOOK_URL": "",
    # 30 s lets the alerts of one incident (trip, then outage) arrive before the first page; 5 min between
    # updates of a group; a still-firing page is repeated every 4 h.
    "IOC_ALERT_GROUP_WAIT": "30s",
    "IOC_ALERT_GROUP_INTERVAL": "5m",
    "IOC_ALERT_REPEAT_INTERVAL": "4h",
}
URLS = ("IOC_ALERT_WEBHOOK_URL", "IOC_PAGER_WEBHOOK_URL", "IOC_DEADMAN_WEBHOOK_URL")


def render(template: str, env: Mapping[str, str]) -> str:
    """The template with every ${IOC_*} filled; SettingsError naming the variable when one is missing or bad."""
    values = {**DEFAULTS, **{k: v for k, v in env.items() if k.startswith("IOC_")}}
    if not values.get("IOC_PAGER_WEBHOOK_URL"):
        raise SettingsError("IOC_PAGER_WEBHOOK_URL: required (the pager's webhook URL, e.g. "
                            "https://events.example.net/integrations/<key>)")
    for name in URLS:
        value = values.get(name, "")
        if value and not value.startswith(("http://", "https://")):
            raise SettingsError(f"{name}: must be an http:// or https:// URL (got {value!r})")
        if any(c in value for c in "'\n"):
            raise SettingsError(f"{name}: must not contain quotes or newlines")
    values["IOC_DEADMAN_RECEIVER"] = "deadman" if values["IOC_DEADMAN_WEBHOOK_URL"] else "history"
    if not values["IOC_DEADMAN_WEBHOOK_URL"]:
        values["IOC_DEADMAN_WEBHOOK_URL"] = values["IOC_ALERT_WEBHOOK_URL"]  # receiver defined but unused
    try:
        return string.Template(template).substitute(values)
    except KeyError as exc:
        raise SettingsError(f"{exc.args[0]}: required by the Alertmanager template") from None


def alertmanager_config(
    out: Annotated[Path | None, typer.Option(help="write here (mode 0600: URLs may hold keys); default stdout")] = None,
    template: Annotated[Path, typer.Option(help="template to fill")] = TEMPLATE,
) -> None:
    """Render the Alertmanager config from IOC_PAGER_WEBHOOK_URL, IOC_ALERT_WEBHOOK_URL, ... (see README)."""
    text = render(template.read_text(), os.environ)
    if out is None:
        sys.stdout.write(text)
        return
    out.touch(mode=0o600)
    out.chmod(0o600)  # also when the file existed with wider permissions
    out.write_text(text)
