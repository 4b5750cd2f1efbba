"""``ioc devices``: the device registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ioc.settings import CommonSettings, load

app = typer.Typer(help="The device registry.", no_args_is_help=True)


@app.command("import")
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
