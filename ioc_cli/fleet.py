"""``ioc fleet-metrics``: the fleet exporter (device liveness and critical readings per area, for Prometheus)."""

from __future__ import annotations

import typer


def fleet_metrics() -> None:
    """Serve fleet metrics for Prometheus on IOC_FLEET_METRICS_PORT (default 9110; settings: IOC_* environment)."""
    from services.fleet.service import main

    raise typer.Exit(main())
