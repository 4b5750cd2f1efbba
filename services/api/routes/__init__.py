"""One module per resource; each exposes ``router``. ``ROUTERS`` is what ``create_app`` includes, in order."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.routes import city, devices, health, kpis, readings, rejects, series

ROUTERS: list[APIRouter] = [health.router, devices.router, readings.router, series.router, kpis.router,
                            rejects.router, city.router]
