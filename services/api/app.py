"""The application factory: ``create_app(settings)`` wires settings, the connection pool, auth, problem
responses, metrics, CORS (only when configured) and the routers in ``services.api.routes``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import ConnectionPool

from services.api import problems
from services.api.config import ApiSettings
from services.api.deps import KeyCache
from services.api.metrics import MetricsMiddleware
from services.api.routes import ROUTERS

DESCRIPTION = """Devices, latest readings, series, KPIs and rejected messages of the Điện Biên Phủ IOC.

Authenticate with an API key (`ioc api-keys create NAME --role viewer|operator|admin`) sent as `X-API-Key` or
`Authorization: Bearer`. Errors are RFC 9457 problem details; a request over a limit names the limit and how
to narrow it. Times are ISO 8601 with an offset. Device, reading and KPI queries without an explicit `city`
leave out sandbox cities (slugs starting with `sim-`)."""


def _pool(settings: ApiSettings) -> ConnectionPool[psycopg.Connection[Any]]:
    # Autocommit: reads run outside transactions (no BEGIN/ROLLBACK round trips); writes use conn.transaction().
    return ConnectionPool(
        settings.database_url,
        min_size=settings.api_pool_min,
        max_size=max(settings.api_pool_min, settings.api_pool_max),
        kwargs={"autocommit": True, "application_name": "ioc-api", "connect_timeout": 5,
                "options": f"-c statement_timeout={settings.api_statement_timeout_ms} -c TimeZone=UTC"},
        open=False,
        name="ioc-api",
        timeout=10,  # a request that waits longer for a connection gets a 503 "busy" instead of hanging

    )


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    pool = _pool(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Not waiting for the database: the process is up (healthz) while it is down; readyz tells.
        pool.open(wait=False)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(title="Điện Biên Phủ IOC API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  responses={})
    app.state.settings = settings
    app.state.pool = pool
    app.state.key_cache = KeyCache(settings.api_key_cache_s)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "PATCH",
                           "DELETE"], allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(MetricsMiddleware)
    # ProblemDetail is referenced by every route's documented errors.
    app.openapi_schema = None
    _openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = _openapi()
            schema.setdefault("components", {}).setdefault("schemas", {})["ProblemDetail"] = (
                problems.ProblemDetail.model_json_schema())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
