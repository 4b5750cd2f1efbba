"""The ``ioc`` command: one entry point with a subcommand per job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ioc.settings import CommonSettings, SettingsError, load

app = typer.Typer(help="Điện Biên Phủ IOC sensor ingestion backend.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema and status.", no_args_is_help=True)
devices_app = typer.Typer(help="The device registry.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(devices_app, name="devices")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create the database if needed and apply pending migrations (idempotent)."""
    from ioc.db.migrate import migrate

    settings = load(CommonSettings)
    report = migrate(settings.database_url, settings.timescaledb)
    typer.echo(f"storage path: {report.storage_path}"
               + (f" (TimescaleDB {report.timescaledb_version})" if report.timescaledb_version else ""))
    for name in report.applied:
        typer.echo(f"applied  {name}")
    for name in report.skipped:
        typer.echo(f"skipped  {name} (no variant for the {report.storage_path} path)")
    typer.echo(f"{len(report.applied)} applied, {len(report.skipped)} skipped, {report.already} already applied")


@db_app.command("info")
def db_info() -> None:
    """Say which storage path is active, what is migrated, and roughly how much is stored."""
    from ioc.db.migrate import info

    settings = load(CommonSettings)
    i = info(settings.database_url)
    typer.echo(f"server:        PostgreSQL {i.server_version}")
    typer.echo(f"storage path:  {i.storage_path}")
    typer.echo(f"timescaledb:   installed={i.timescaledb_installed or 'no'} offered={i.timescaledb_offered or 'no'}")
    if i.storage_path == "plain" and i.timescaledb_offered:
        typer.echo("note:          the server offers TimescaleDB but this schema was built on plain PostgreSQL")
    typer.echo(f"migrations:    {len(i.migrations)} applied, pending: {i.pending or 'none'}")
    for table, rows in i.row_estimates.items():
        typer.echo(f"  ioc.{table:<22} ~{rows} rows (planner estimate; ANALYZE refreshes it)")


@devices_app.command("import")
def devices_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".jsonl, .json or .csv")],
) -> None:
    """Insert or update devices from a fleet file."""
    from ioc.db.connect import connect
    from ioc.registry import FleetFileError, read_devices, upsert_devices

    settings = load(CommonSettings)
    try:
        with connect(settings.database_url) as conn:
            count = upsert_devices(conn, read_devices(file))
    except FleetFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"imported {count} devices from {file}")


@app.command("schemas")
def schemas(
    out: Annotated[Path, typer.Option(help="directory to write the JSON Schemas to")] = Path("schemas"),
) -> None:
    """Export the payload JSON Schemas for integrators."""
    from ioc.contract.schemas import write_schemas

    for path in write_schemas(out):
        typer.echo(f"wrote {path}")


@app.command("ingest")
def ingest(
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes sharing the stream "
                                         "(MQTT shared subscription); worker i serves metrics on port+i")] = 1,
) -> None:
    """Run ingest: MQTT → PostgreSQL/TimescaleDB (settings: IOC_* environment)."""
    if workers == 1:
        from services.ingest.service import main as run_worker

        raise typer.Exit(run_worker())
    from services.ingest.supervisor import run_workers

    raise typer.Exit(run_workers(workers))


from simulators.cli import app as sim_app  # noqa: E402 - mounted after the core commands are defined

app.add_typer(sim_app, name="sim")


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        print(exc.message, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
