"""``ioc dashboards``: generate the Grafana dashboards and provisioning files, or check the committed ones."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Grafana dashboards for the IOC wall (generated from dashboards/).", no_args_is_help=True)


@app.command()
def build(
    check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 when the committed files differ "
                                                        "from the generator or break a lint rule")] = False,
) -> None:
    """Write deploy/grafana/dashboards/**.json and deploy/grafana/provisioning/**.yaml from the code."""
    import dashboards
    from dashboards.lint import lint_all
    from dashboards.provisioning import DATASOURCE_UIDS

    problems = lint_all((d.to_json() for d in dashboards.dashboards()), DATASOURCE_UIDS)
    if check:
        problems += dashboards.stale()
        for line in problems:
            typer.echo(line, err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{len(dashboards.BUILDERS)} dashboards and provisioning files are up to date")
        return
    for line in problems:
        typer.echo(f"lint: {line}", err=True)
    for path in dashboards.write():
        typer.echo(f"wrote {path.relative_to(dashboards.ROOT)}")
    if problems:
        raise typer.Exit(1)


@app.command()
def datasources(
    timescaledb: Annotated[str, typer.Option(help="on: $__timeGroup uses time_bucket() (TimescaleDB server); "
                                                  "off: plain PostgreSQL")] = "on",
) -> None:
    """Print the data source provisioning file with the TimescaleDB toggle set as asked."""
    from dashboards.provisioning import datasources as render

    if timescaledb not in ("on", "off"):
        raise typer.BadParameter("on or off", param_hint="--timescaledb")
    typer.echo(render(timescaledb == "on"), nl=False)
