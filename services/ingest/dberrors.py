"""Database errors classified at the edge: does this error belong to one message's data, or does it mean the
database cannot take anything right now?

Only the first kind may be isolated by bisection and stored as a ``storage_error`` rejection (and acknowledged).
Everything else is ``unavailable``: nothing is acknowledged, ingest backs off and retries the same batch, ``/health``
says why, and ``ioc_ingest_db_errors_total{kind="transient",error=…}`` counts it. When unsure, unavailable: a
stall that heals by itself and pages someone costs less than acknowledged data that was never stored.

==========  ===============================  ===========  ===================================================
SQLSTATE    name (the ``error`` label)       outcome      typical cause
==========  ===============================  ===========  ===================================================
23505 (on   duplicate_key                    unavailable  a reading already stored; the retry takes the
a reading                                                 de-duplicating path (never a rejection)
table key)
22xxx       data_exception                   data         a value the column cannot hold (range, encoding)
23xxx       integrity_constraint_violation   data         a CHECK / NOT NULL a message's values break
(none)      client_encoding                  data         psycopg could not encode a value (ValueError,
                                                          OverflowError, psycopg.DataError client-side)
08xxx       connection_exception             unavailable  server gone, network down
(none)      connection_lost                  unavailable  psycopg.OperationalError/InterfaceError, no SQLSTATE
(none)      (not classified: a bug)          exit         any other client-side psycopg error
25006       read_only_sql_transaction        unavailable  failover to a standby, default_transaction_read_only
42P01       undefined_table                  unavailable  schema mismatch (rolling upgrade, migration pending)
42703       undefined_column                 unavailable  schema mismatch
42501       insufficient_privilege           unavailable  a revoked grant
42xxx       syntax_error_or_access_rule      unavailable  other schema/permission mismatches
53xxx       insufficient_resources           unavailable  disk full (53100), out of memory, too many
                                                          connections
54xxx       program_limit_exceeded           unavailable  a server limit; nothing a message can fix alone
55P03       lock_not_available               unavailable  lock_timeout (a migration holding a table lock)
57014       query_canceled                   unavailable  statement_timeout, pg_cancel_backend
57P0x       admin_shutdown / crash_shutdown  unavailable  server restarting, pg_terminate_backend
40001       serialization_failure            unavailable  retry
40P01       deadlock_detected                unavailable  retry
(other)     the SQLSTATE's class             unavailable  anything not listed above
==========  ===============================  ===========  ===================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import psycopg
from psycopg import errors as pgerrors


class Outcome(Enum):
    DATA = "data"  # isolate the message by bisection, store it as a storage_error rejection
    UNAVAILABLE = "unavailable"  # acknowledge nothing, back off, retry the same batch


@dataclass(frozen=True, slots=True)
class Classified:
    outcome: Outcome
    error: str  # the metric label and the /health reason: a SQLSTATE name, never free text
    sqlstate: str | None


# Exact SQLSTATEs first, then two-character classes. Names are PostgreSQL's condition names.
SQLSTATES: dict[str, tuple[Outcome, str]] = {
    "25006": (Outcome.UNAVAILABLE, "read_only_sql_transaction"),
    "42P01": (Outcome.UNAVAILABLE, "undefined_table"),
    "42703": (Outcome.UNAVAILABLE, "undefined_column"),
    "42501": (Outcome.UNAVAILABLE, "insufficient_privilege"),
    "53100": (Outcome.UNAVAILABLE, "disk_full"),
    "55P03": (Outcome.UNAVAILABLE, "lock_not_available"),
    "57014": (Outcome.UNAVAILABLE, "query_canceled"),
    "57P01": (Outcome.UNAVAILABLE, "admin_shutdown"),
    "57P02": (Outcome.UNAVAILABLE, "crash_shutdown"),
    "57P03": (Outcome.UNAVAILABLE, "cannot_connect_now"),
    "40001": (Outcome.UNAVAILABLE, "serialization_failure"),
    "40P01": (Outcome.UNAVAILABLE, "deadlock_detected"),
}
SQLSTATE_CLASSES: dict[str, tuple[Outcome, str]] = {
    "22": (Outcome.DATA, "data_exception"),
    "23": (Outcome.DATA, "integrity_constraint_violation"),
    "08": (Outcome.UNAVAILABLE, "connection_exception"),
    "42": (Outcome.UNAVAILABLE, "syntax_error_or_access_rule_violation"),
    "53": (Outcome.UNAVAILABLE, "insufficient_resources"),
    "54": (Outcome.UNAVAILABLE, "program_limit_exceeded"),
    "57": (Outcome.UNAVAILABLE, "operator_intervention"),
    "40": (Outcome.UNAVAILABLE, "transaction_rollback"),
}


def classify(exc: BaseException, idempotency_keys: tuple[str, ...] = ()) -> Classified | None:
    """How to treat ``exc`` raised while writing; None when it is not a database or encoding error at all (a
    bug: the caller lets it propagate, and the process exits). ``idempotency_keys``: constraint names (or their
    endings: TimescaleDB prefixes a chunk's copy of a constraint) whose unique violation means "already stored"."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:
            if isinstance(exc, psycopg.DataError):  # raised client-side while dumping a value
                return Classified(Outcome.DATA, "client_encoding", None)
            if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
                return Classified(Outcome.UNAVAILABLE, "connection_lost", None)
            return None  # client-side misuse (a ProgrammingError): a bug, not the database's state
        if isinstance(exc, pgerrors.UniqueViolation) and (exc.diag.constraint_name or "").endswith(
                idempotency_keys):
            return Classified(Outcome.UNAVAILABLE, "duplicate_key", state)
        known = SQLSTATES.get(state) or SQLSTATE_CLASSES.get(state[:2])
        if known is not None:
            return Classified(known[0], known[1], state)
        return Classified(Outcome.UNAVAILABLE, f"sqlstate_class_{state[:2].lower()}", state)
    if isinstance(exc, (ValueError, OverflowError)):  # includes UnicodeEncodeError: a value psycopg cannot encode
        return Classified(Outcome.DATA, "client_encoding", None)
    return None


class DatabaseUnavailable(Exception):
    """The database cannot take anything now: retry the same batch later, acknowledge nothing."""

    def __init__(self, error: str, cause: BaseException) -> None:
        text = str(cause).strip()
        first_line = text.splitlines()[0] if text else type(cause).__name__
        super().__init__(f"{error}: {first_line}")
        self.error = error
