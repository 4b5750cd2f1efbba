"""SQL for the alert history: idempotent upsert of webhook alerts, active and recent alerts with their
acknowledgements, and acknowledging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# A resolved occurrence stays resolved: a firing notification retried after the resolve (webhook retries are not
# ordered) must not reopen it. Labels and annotations follow the newest notification.
UPSERT = """
INSERT INTO ioc.alerts AS a (fingerprint, starts_at, alertname, status, severity, area, city, ward, labels,
                             annotations, ends_at, generator_url)
VALUES (%(fingerprint)s, %(starts_at)s, %(alertname)s, %(status)s, %(severity)s, %(area)s, %(city)s, %(ward)s,
        %(labels)s, %(annotations)s, %(ends_at)s, %(generator_url)s)
ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
    status = CASE WHEN a.status = 'resolved' THEN 'resolved' ELSE EXCLUDED.status END,
    ends_at = CASE WHEN a.status = 'resolved' THEN a.ends_at ELSE EXCLUDED.ends_at END,
    labels = EXCLUDED.labels, annotations = EXCLUDED.annotations, generator_url = EXCLUDED.generator_url,
    severity = EXCLUDED.severity, area = EXCLUDED.area, city = EXCLUDED.city, ward = EXCLUDED.ward,
    notifications = a.notifications + 1, updated_at = now()
"""

SELECT = """
SELECT a.fingerprint, a.starts_at, a.ends_at, a.status, a.alertname, a.severity, a.city, a.ward, a.area, a.labels,
       a.annotations, a.generator_url, a.first_received_at, a.updated_at, a.notifications,
       coalesce((SELECT jsonb_agg(jsonb_build_object('acked_by', k.acked_by, 'acked_at', k.acked_at,
                                                     'comment', k.comment) ORDER BY k.acked_at)
                 FROM ioc.alert_acks k WHERE k.fingerprint = a.fingerprint AND k.starts_at = a.starts_at),
                '[]'::jsonb) AS acks
FROM ioc.alerts a
"""


def store(conn: psycopg.Connection[Any], alerts: list[dict[str, Any]]) -> None:
    """All alerts of one notification in one transaction: a delivery is stored whole or not at all."""
    rows = [{**a, "labels": Jsonb(a["labels"]), "annotations": Jsonb(a["annotations"])} for a in alerts]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(UPSERT, rows)


def active(conn: psycopg.Connection[Any], city: str | None, limit: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT + """WHERE a.status = 'firing' AND (%(city)s::text IS NULL OR a.city = %(city)s)
                                         AND a.severity IS DISTINCT FROM 'none' -- the Watchdog heartbeat
                                       ORDER BY a.starts_at DESC LIMIT %(limit)s""",
                           {"city": city, "limit": limit}).fetchall()


def recent(conn: psycopg.Connection[Any], since: datetime, city: str | None, status: str | None,
           limit: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT + """WHERE a.updated_at >= %(since)s
                                         AND (%(city)s::text IS NULL OR a.city = %(city)s)
                                         AND (%(status)s::text IS NULL OR a.status = %(status)s)
                                       ORDER BY a.updated_at DESC LIMIT %(limit)s""",
                           {"since": since, "city": city, "status": status, "limit": limit}).fetchall()


def acknowledge(conn: psycopg.Connection[Any], fingerprint: str, starts_at: datetime | None, by: str,
                comment: str | None) -> dict[str, Any] | None:
    """Acknowledge the given occurrence (default: the newest one of this fingerprint); None when there is none."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        target = cur.execute(
            """SELECT fingerprint, starts_at FROM ioc.alerts WHERE fingerprint = %s
                 AND (%s::timestamptz IS NULL OR starts_at = %s) ORDER BY starts_at DESC LIMIT 1""",
            (fingerprint, starts_at, starts_at)).fetchone()
        if target is None:
            return None
        cur.execute("INSERT INTO ioc.alert_acks (fingerprint, starts_at, acked_by, comment) VALUES (%s, %s, %s, %s)",
                    (target["fingerprint"], target["starts_at"], by, comment))
        row: dict[str, Any] | None = cur.execute(SELECT + "WHERE a.fingerprint = %s AND a.starts_at = %s",
                                                 (target["fingerprint"], target["starts_at"])).fetchone()
        return row
