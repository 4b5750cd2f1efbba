"""The ``ioc`` command: one entry point with a subcommand per job.

It sits above the packages it wires together (``ioc`` core, ``services``, ``simulators``): the core imports
none of them. Each command group lives in its own module and is mounted here.
"""

from __future__ import annotations

import sys

import typer

from ioc.settings import SettingsError
from ioc_cli import alerting, api, credentials, dashboards, db, devices, fleet, ingest, schemas
from simulators.cli import app as sim_app

app = typer.Typer(help="Điện Biên Phủ IOC sensor ingestion backend.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(db.app, name="db")
app.add_typer(devices.app, name="devices")
devices.app.add_typer(credentials.app, name="credentials")
app.add_typer(dashboards.app, name="dashboards")
app.command("schemas")(schemas.schemas)
app.command("ingest")(ingest.ingest)
app.command("fleet-metrics")(fleet.fleet_metrics)
app.command("alertmanager-config")(alerting.alertmanager_config)
app.add_typer(sim_app, name="sim")
app.command("api")(api.api)
app.add_typer(api.keys_app, name="api-keys")


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        print(exc.message, file=sys.stderr)
        sys.exit(2)
