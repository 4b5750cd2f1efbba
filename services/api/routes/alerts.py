"""Alert history: Alertmanager's webhook (payload version 4) in, active and recent alerts out, acknowledgements.

The webhook is authenticated like every other call (an API key, here an operator key that Alertmanager sends as
``Authorization: Bearer`` from its ``credentials_file``); a malformed payload is refused whole (422) and stores
nothing. Storage is idempotent on (fingerprint, starts_at): Alertmanager re-sends a group's alerts on every update
and retries failed deliveries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.api.deps import Db, Operator, Viewer
from services.api.params import aware
from services.api.problems import ERRORS, not_found
from services.api.queries import alerts as q

router = APIRouter(prefix="/v1", tags=["alerts"], responses=ERRORS)

# Alertmanager marks "no end yet" with Go's zero time.
_NO_END = datetime(1, 1, 2, tzinfo=UTC)
MAX_ALERTS_PER_NOTIFICATION = 1000
Label = Annotated[str, Field(max_length=1024)]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")], Label]
    annotations: dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=8192)]] = {}
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: Annotated[str, Field(max_length=2048)] = ""
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")]

    @field_validator("labels")
    @classmethod
    def _named(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("labels must include alertname")
        return labels

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone offset")
        return value


class WebhookNotification(BaseModel):
    """Alertmanager's webhook body (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: Annotated[str, Field(max_length=4096)]
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: Literal["firing", "resolved"]
    receiver: Annotated[str, Field(max_length=256)]
    groupLabels: dict[str, Label] = {}
    commonLabels: dict[str, Label] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: Annotated[str, Field(max_length=2048)] = ""
    alerts: Annotated[list[WebhookAlert], Field(min_length=1, max_length=MAX_ALERTS_PER_NOTIFICATION)]


class Stored(BaseModel):
    stored: int = Field(description="alerts in the notification (each upserted on fingerprint + start time)")


class Ack(BaseModel):
    acked_by: str
    acked_at: datetime
    comment: str | None


class Alert(BaseModel):
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None
    status: Literal["firing", "resolved"]
    alertname: str
    severity: str | None
    city: str | None
    ward: str | None
    area: str | None
    labels: dict[str, str]
    annotations: dict[str, str] = Field(description="summary (vi), description (en), where, runbook")
    generator_url: str | None
    first_received_at: datetime
    updated_at: datetime
    notifications: int
    acks: list[Ack]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: datetime | None = Field(default=None, description="which occurrence; default the newest")
    comment: Annotated[str | None, Field(max_length=2000)] = None


def _row(a: WebhookAlert) -> dict[str, Any]:
    labels = a.labels
    ended = a.endsAt if a.status == "resolved" and a.endsAt is not None and a.endsAt > _NO_END else None
    return {"fingerprint": a.fingerprint, "starts_at": a.startsAt, "alertname": labels["alertname"],
            "status": a.status, "severity": labels.get("severity"), "area": labels.get("area"),
            "city": labels.get("city"), "ward": labels.get("ward"), "labels": labels, "annotations": a.annotations,
            "ends_at": ended, "generator_url": a.generatorURL or None}


@router.post("/alerts/webhook", summary="Alertmanager webhook receiver (payload version 4; operator key)",
             response_model=Stored)
def webhook(body: WebhookNotification, db: Db, _: Operator) -> Stored:
    q.store(db, [_row(a) for a in body.alerts])
    return Stored(stored=len(body.alerts))


City = Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,64}$")]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/alerts/active", summary="Alerts firing now, newest first, with their acknowledgements (the always-firing "
            "Watchdog, severity none, is left out; /v1/alerts lists it)",
            response_model=list[Alert])
def active_alerts(db: Db, _: Viewer, city: City = None, limit: Limit = 200) -> list[Alert]:
    return [Alert(**r) for r in q.active(db, city, limit)]


@router.get("/alerts", summary="Recent alerts (firing and resolved) by last change, newest first",
            response_model=list[Alert])
def recent_alerts(db: Db, _: Viewer, city: City = None,
                  status: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
                  since: Annotated[datetime | None, Query(description="changed at or after; default 24 h ago")] = None,
                  limit: Limit = 200) -> list[Alert]:
    start = aware("since", since) if since else datetime.now(UTC) - timedelta(hours=24)
    return [Alert(**r) for r in q.recent(db, start, city, status, limit)]


@router.post("/alerts/{fingerprint}/ack", summary="Acknowledge an alert (operator or admin)", response_model=Alert)
def acknowledge(fingerprint: Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")], db: Db, who: Operator,
                body: AckRequest | None = None) -> Alert:
    body = body or AckRequest()
    starts_at = aware("starts_at", body.starts_at) if body.starts_at else None
    row = q.acknowledge(db, fingerprint, starts_at, who.name, body.comment)
    if row is None:
        raise not_found(f"alert {fingerprint}")
    return Alert(**row)
