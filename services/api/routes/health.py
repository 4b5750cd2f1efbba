"""Operations: liveness, readiness, Prometheus metrics. Open (no key): probes and scrapers carry none."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool, PoolTimeout

from services.api.deps import get_pool

router = APIRouter(tags=["operations"])

# Readiness answers within this even when the pool is exhausted or the server hangs.
READY_TIMEOUT_S = 2.0


@router.get("/healthz", summary="Process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable", responses={503: {"description": "database unreachable"}})
def readyz(pool: Annotated[ConnectionPool[psycopg.Connection[Any]], Depends(get_pool)],
           response: Response) -> dict[str, str]:
    try:
        with pool.connection(timeout=READY_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout) as exc:
        response.status_code = 503
        return {"status": "unavailable", "detail": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
