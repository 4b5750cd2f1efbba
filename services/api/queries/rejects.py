"""SQL for rejected messages: newest first, keyset-paged by id, and counts per reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

# Bytes of a rejected payload shown per message: enough to see what a device sent (the table keeps up to 4 KiB).
SHOW_BYTES = 1024


@dataclass(frozen=True)
class RejectFilter:
    device_id: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, params: dict[str, Any]) -> sql.Composable:
        parts: list[sql.Composable] = [sql.SQL("true")]
        for column, op, value, name in (("device_id", "=", self.device_id, "device"), ("reason", "=", self.reason,
                                         "reason"), ("received_at", ">=", self.since, "since"),
                                        ("received_at", "<", self.until, "until")):
            if value is not None:
                parts.append(sql.SQL("{} " + op + " {}").format(sql.Identifier(column), sql.Placeholder(name)))
                params[name] = value
        return sql.SQL(" AND ").join(parts)


def page(conn: psycopg.Connection[Any], flt: RejectFilter, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"before": before_id, "limit": limit + 1, "show": SHOW_BYTES}
    query = sql.SQL(
        """SELECT id, received_at, topic, device_id, reason, detail, substring(payload FROM 1 FOR %(show)s) AS payload,
                  payload_size
           FROM ioc.rejected_messages WHERE {} AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
           ORDER BY id DESC LIMIT %(limit)s"""
    ).format(flt.where(params))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def counts(conn: psycopg.Connection[Any], flt: RejectFilter) -> list[tuple[str, int, datetime]]:
    params: dict[str, Any] = {}
    query = sql.SQL(
        "SELECT reason, count(*), max(received_at) FROM ioc.rejected_messages WHERE {} GROUP BY reason"
        " ORDER BY count(*) DESC, reason"
    ).format(flt.where(params))
    return [(str(r[0]), int(r[1]), r[2]) for r in conn.execute(query, params).fetchall()]
