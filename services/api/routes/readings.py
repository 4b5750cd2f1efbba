"""Latest readings: of one device, or of many in one streamed response. "Latest" is the newest reading *time*
(kept by ingest, newer wins), never the last message to arrive."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from ioc.contract.topics import DEVICE_ID_RE
from services.api.deps import Db, Viewer, get_pool
from services.api.models import State
from services.api.params import Filter
from services.api.problems import ERRORS, not_found
from services.api.queries import readings as q

router = APIRouter(prefix="/v1", tags=["readings"], responses=ERRORS)


class LatestItem(BaseModel):
    device_id: str
    family: str
    kind: str
    ward: str | None
    site: str | None
    lat: float | None
    lon: float | None
    state: State
    time: datetime | None = Field(description="reading time of `reading` (UTC)")
    reading: dict[str, Any] | None = Field(default=None, description="the newest reading's fields (table columns, "
                                           "nulls left out); traffic: {lanes: [...]}. Absent with reading=false")


@router.get("/devices/{device_id}/latest", summary="Newest reading of one device", response_model=LatestItem)
def latest_of_device(db: Db, _: Viewer,
                     device_id: Annotated[str, Path(pattern=DEVICE_ID_RE.pattern)]) -> Response:
    text = q.latest_one(db, device_id)
    if text is None:
        raise not_found(f"device {device_id!r}")
    return Response(text, media_type="application/json")


def _stream(pool: ConnectionPool[psycopg.Connection[Any]], flt: Any, ndjson: bool, reading: bool) -> Iterator[bytes]:
    # The connection is taken here, not from a request dependency: it must stay open while the body streams.
    with pool.connection() as conn:
        first = True
        if not ndjson:
            yield b"["
        for batch in q.stream_latest(conn, flt, reading):
            if ndjson:
                yield ("\n".join(batch) + "\n").encode()
            else:
                yield (("" if first else ",") + ",\n".join(batch)).encode()
            first = False
        if not ndjson:
            yield b"]\n"


@router.get("/latest", summary="Newest reading and state of many devices, streamed (by city, ward, family, kind, "
            "ids)", response_model=list[LatestItem],
            responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
def latest_of_many(_: Viewer, flt: Filter, pool: Annotated[ConnectionPool[psycopg.Connection[Any]], Depends(get_pool)],
                   format: Annotated[Literal["json", "ndjson"], Query(description="a JSON array, or one object "
                                                                      "per line")] = "json",
                   reading: Annotated[bool, Query(description="false: state only (maps, status boards)")] = True,
                   ) -> Response:
    ndjson = format == "ndjson"
    return StreamingResponse(_stream(pool, flt, ndjson, reading),
                             media_type="application/x-ndjson" if ndjson else "application/json")
