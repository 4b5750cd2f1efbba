"""Which storage path the database is on (plain PostgreSQL or TimescaleDB), asked once per app."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from fastapi import FastAPI

from ioc.db.connect import timescaledb_installed


def storage_path(app: FastAPI, conn: psycopg.Connection[Any]) -> Literal["plain", "timescaledb"]:
    cached: Literal["plain", "timescaledb"] | None = getattr(app.state, "storage_path", None)
    if cached is None:
        cached = "timescaledb" if timescaledb_installed(conn) else "plain"
        app.state.storage_path = cached
    return cached
