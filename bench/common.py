"""Shared pieces of the benchmarks: a real broker and database, an ingest process, a fast publisher."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ioc.db.migrate import migrate  # noqa: E402
from testkit.broker import MosquittoBroker  # noqa: E402, F401
from testkit.databases import create_database, drop_database  # noqa: E402
from testkit.ingest import IngestProcess  # noqa: E402, F401
from testkit.mqtt import Publisher  # noqa: E402, F401

SERVER = os.environ.get("IOC_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
CITY = "dien-bien-phu"


def status(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


@contextmanager
def database(storage: str) -> Iterator[str]:
    dsn = create_database(SERVER, prefix="ioc_bench")
    try:
        report = migrate(dsn, storage)
        status(f"database {dsn.rsplit('/', 1)[1]}: storage path {report.storage_path}")
        yield dsn
    finally:
        drop_database(SERVER, dsn)


def lamp_payload(ts_ms: int, i: int) -> dict[str, object]:
    return {"dateObserved": ts_ms, "powerState": "on", "illuminanceLevel": 0.8, "powerConsumption": 48.0 + i % 7,
            "voltage": 229.5, "current": 0.21, "energyConsumed": 1000.0 + i * 0.01, "status": "ok"}


def encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
