"""One module per resource; each exposes ``router``. ``ROUTERS`` is what ``create_app`` includes, in order."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.routes import (
                            alerts,
                            city,
                            devices,
                            health,
                            kpis,
                            kpis_environment,
                            kpis_networks,
                            readings,
                            rejects,
                            series,
)

ROUTERS: list[APIRouter] = [health.router, devices.router, readings.router, series.router, kpis.router,
                            kpis_networks.router, kpis_environment.router, rejects.router, city.router,
                            alerts.router]
