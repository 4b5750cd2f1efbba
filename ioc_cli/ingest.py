"""``ioc ingest``: MQTT → PostgreSQL/TimescaleDB workers."""

from __future__ import annotations

from typing import Annotated

import typer


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
