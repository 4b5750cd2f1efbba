"""Least-privilege database roles and the grants that `ioc db migrate` applies after every run.

Migrations run as the schema owner (the only role with DDL rights). The services connect as roles that own
nothing and hold only the table privileges below, so none of them can create, alter or drop anything:

- ``ioc_ingest``: read the registry; insert/select the readings, events, rejects and status history it writes;
  update device state and a redelivered rejection's count; delete events, rejects and status history past their
  retention (plain PostgreSQL); TEMP tables (its de-duplicating staging path).
- ``ioc_api``: read everything; write alert history and acknowledgements; manage API keys and register or
  decommission devices (no delete anywhere).
- ``ioc_grafana``: read everything except API key hashes.

The rules match table names, so a table added by a later migration is covered as soon as its name fits a rule;
``ioc db migrate`` re-applies them at the end of every run. A table no rule grants any write to must be listed in
``OWNER_WRITES_ONLY`` (tests/test_db_roles.py fails otherwise): every new table gets a deliberate decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import psycopg
from psycopg import sql

SCHEMA = "ioc"
INGEST, API, GRAFANA = "ioc_ingest", "ioc_api", "ioc_grafana"
SERVICE_ROLES = (INGEST, API, GRAFANA)


@dataclass(frozen=True)
class Rule:
    role: str
    privileges: tuple[str, ...]
    patterns: tuple[str, ...]  # table or view names in schema ioc (fnmatch)
    exclude: tuple[str, ...] = ()

    def covers(self, name: str) -> bool:
        return (any(fnmatchcase(name, p) for p in self.patterns)
                and not any(fnmatchcase(name, p) for p in self.exclude))


READINGS = ("*_readings", "device_events", "device_status_changes", "rejected_messages")
RULES: tuple[Rule, ...] = (
    Rule(INGEST, ("SELECT",), ("devices",)),
    Rule(INGEST, ("SELECT", "INSERT"), (*READINGS, "ingest_*")),
    Rule(INGEST, ("SELECT", "INSERT", "UPDATE"), ("device_state",)),
    Rule(INGEST, ("UPDATE",), ("rejected_messages",)),  # a redelivered bad message bumps its row's times_received
    # Retention clean-up on plain PostgreSQL (services/ingest/retention.py); TimescaleDB drops chunks by policy.
    Rule(INGEST, ("DELETE",), ("rejected_messages", "device_events", "device_status_changes")),
    Rule(API, ("SELECT",), ("*",)),
    Rule(API, ("INSERT", "UPDATE"), ("alerts", "alert_*", "api_keys", "devices")),  # admins register/decommission
    Rule(API, ("INSERT",), ("device_state",)),  # the state row of a device registered through the API
    Rule(GRAFANA, ("SELECT",), ("*",), exclude=("api_keys",)),
)
# Tables only the owner (migrations, `ioc devices import`, operators) writes.
OWNER_WRITES_ONLY = frozenset({"schema_migrations"})


def relations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(name, relkind) of the tables, views and materialized views in schema ioc."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1", (SCHEMA,)
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def unclassified(names: list[str]) -> list[str]:
    """Tables no rule lets a service write and that are not declared owner-written: a decision is missing."""
    writes = [r for r in RULES if set(r.privileges) - {"SELECT"}]
    return [n for n in names if n not in OWNER_WRITES_ONLY and not any(r.covers(n) for r in writes)]


def apply_grants(conn: psycopg.Connection[Any]) -> int:
    """Grant every rule on every matching relation (idempotent); returns how many GRANTs ran."""
    database = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    db, schema = sql.Identifier(database), sql.Identifier(SCHEMA)
    roles = sql.SQL(", ").join(sql.Identifier(r) for r in SERVICE_ROLES)
    statements: list[sql.Composable] = [
        # Explicit, so the roles keep working where the DBA revoked PUBLIC's default CONNECT and TEMPORARY
        # (`REVOKE ALL ON DATABASE ioc FROM PUBLIC`, as deploy/compose/initdb does). Not revoked here: other roles
        # a site uses (monitoring, backups, tests) are the DBA's decision.
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, roles),
        # The ingest's de-duplicating path uses per-connection TEMP staging tables.
        sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(db, sql.Identifier(INGEST)),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, roles),
    ]
    inserters: set[str] = set()
    for name, kind in relations(conn):
        for rule in RULES:
            if not rule.covers(name):
                continue
            # Views and continuous aggregates are read-only whatever the rule says.
            privileges = rule.privileges if kind in ("r", "p") else tuple(p for p in rule.privileges if p == "SELECT")
            if not privileges:
                continue
            statements.append(sql.SQL("GRANT {} ON {}.{} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in privileges), schema, sql.Identifier(name),
                sql.Identifier(rule.role)))
            if "INSERT" in privileges:
                inserters.add(rule.role)
    for role in sorted(inserters):  # serial/identity columns of the tables they insert into
        statements.append(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
            schema, sql.Identifier(role)))
    with conn.transaction():
        for statement in statements:
            conn.execute(statement.as_string(conn))
    return len(statements)


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Let ``role`` log in with ``password``. The SCRAM verifier is computed here (libpq), so the plain
    password never reaches the server or its statement log."""
    if role not in SERVICE_ROLES:
        raise ValueError(f"{role!r} is not one of the service roles {', '.join(SERVICE_ROLES)}")
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))
