"""``ioc db``: schema migrations and what the database holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ioc.settings import CommonSettings, load

app = typer.Typer(help="Database schema and status.", no_args_is_help=True)


@app.command("migrate")
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
    typer.echo(f"service-role grants re-applied ({report.grants} statements)")


@app.command("password")
def db_password(
    role: Annotated[str, typer.Argument(help="ioc_ingest, ioc_api or ioc_grafana")],
    password_file: Annotated[Path, typer.Option("--password-file", exists=True, dir_okay=False,
                                                help="file holding the password (first line); '-' is not accepted")],
) -> None:
    """Let a service role log in with the password held in a file (hashed here, SCRAM, before it is sent)."""
    from ioc.db.connect import connect
    from ioc.db.roles import SERVICE_ROLES, set_password

    if role not in SERVICE_ROLES:
        typer.echo(f"error: {role!r} is not one of {', '.join(SERVICE_ROLES)}", err=True)
        raise typer.Exit(2)
    lines = password_file.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0]:
        typer.echo(f"error: {password_file} is empty", err=True)
        raise typer.Exit(2)
    settings = load(CommonSettings)
    with connect(settings.database_url, autocommit=True) as conn:
        set_password(conn, role, lines[0])
    typer.echo(f"{role} may log in with the password from {password_file}")


@app.command("info")
def db_info() -> None:
    """Say which storage path is active, what is migrated, and what each table holds (rows, time range)."""
    from ioc.db.migrate import info

    settings = load(CommonSettings)
    i = info(settings.database_url)
    typer.echo(f"server:        PostgreSQL {i.server_version}")
    typer.echo(f"storage path:  {i.storage_path}")
    typer.echo(f"timescaledb:   installed={i.timescaledb_installed or 'no'} offered={i.timescaledb_offered or 'no'}")
    if i.storage_path == "plain" and i.timescaledb_offered:
        typer.echo("note:          the server offers TimescaleDB but this schema was built on plain PostgreSQL")
    typer.echo(f"migrations:    {len(i.migrations)} applied, pending: {i.pending or 'none'}")
    for t in i.tables:
        rows = f"{t.rows:>12,} rows" if t.exact else f"~{t.rows:>11,} rows (estimate)"
        span = f"  {_utc(t.first)} → {_utc(t.last)}" if t.first and t.last else ""
        kinds = "  " + ", ".join(f"{p} {n:,}" for p, n in t.by_provenance.items()) if t.by_provenance else ""
        typer.echo(f"  ioc.{t.name:<22}{rows}{span}{kinds}")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
