"""Rejected messages: what ingest refused and why, browsable by device, reason and time, with counts per reason.
Payloads are shown safely: decoded as UTF-8 with replacement characters, truncated, never interpreted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from ioc.contract.topics import DEVICE_ID_RE
from services.api.deps import Db, Settings, Viewer
from services.api.params import aware, page_size
from services.api.problems import ERRORS, Problem
from services.api.queries import rejects as q

router = APIRouter(prefix="/v1", tags=["rejects"], responses=ERRORS)


class Rejected(BaseModel):
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: str = Field(description=f"the first {q.SHOW_BYTES} bytes as UTF-8 (invalid bytes replaced)")
    payload_size: int
    truncated: bool


class RejectedPage(BaseModel):
    items: list[Rejected]
    next: str | None


class ReasonCount(BaseModel):
    reason: str
    count: int
    last: datetime


Device = Annotated[str | None, Query(pattern=DEVICE_ID_RE.pattern)]
Reason = Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$", description="e.g. missing_field, unknown_device")]
Since = Annotated[datetime | None, Query(description="received at or after (ISO 8601 with offset)")]
Until = Annotated[datetime | None, Query(description="received before (ISO 8601 with offset)")]


def _filter(device: str | None, reason: str | None, since: datetime | None, until: datetime | None) -> q.RejectFilter:
    return q.RejectFilter(device, reason, since and aware("since", since), until and aware("until", until))


@router.get("/rejects", summary="Rejected messages, newest first (cursor-paged)", response_model=RejectedPage)
def list_rejects(request: Request, db: Db, settings: Settings, _: Viewer, device: Device = None, reason: Reason = None,
                 since: Since = None, until: Until = None,
                 limit: Annotated[int | None, Query(ge=1)] = None,
                 cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None) -> RejectedPage:
    size = page_size(limit, settings)
    before = int(cursor) if cursor else None
    if before is not None and before > 2**63 - 1:
        raise Problem(422, "invalid-parameter", "cursor is not one this API issued")
    rows = q.page(db, _filter(device, reason, since, until), before, size)
    more = len(rows) > size
    rows = rows[:size]
    items = [Rejected(**{**r, "payload": bytes(r["payload"]).decode("utf-8", errors="replace"),
                         "truncated": r["payload_size"] > len(r["payload"])}) for r in rows]
    nxt = str(request.url.include_query_params(cursor=rows[-1]["id"])) if more else None
    return RejectedPage(items=items, next=nxt)


@router.get("/rejects/counts", summary="Rejected messages per reason", response_model=list[ReasonCount])
def reject_counts(db: Db, _: Viewer, device: Device = None, reason: Reason = None, since: Since = None,
                  until: Until = None) -> list[ReasonCount]:
    return [ReasonCount(reason=r, count=n, last=t) for r, n, t in q.counts(db, _filter(device, reason, since, until))]
