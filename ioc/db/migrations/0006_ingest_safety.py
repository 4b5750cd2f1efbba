"""Ingest safety: the registry refuses kinds ingest does not know; rejections are stored once per message and
expire; device events and status changes expire.

- ``devices.kind`` is one of the kinds of ``ioc/contract/kinds.py`` (listed literally: a migration is history;
  a test keeps this list equal to the code's, so a new kind comes with a new migration).
- ``rejected_messages.digest`` (sha-256 of topic, payload, position and reason, 16 bytes) is unique: a redelivered
  or replayed bad message bumps ``times_received`` / ``last_received_at`` instead of adding rows.
- Retention: on TimescaleDB ``device_events`` and ``device_status_changes`` (made a hypertable here) get
  400-day retention policies; on plain PostgreSQL ingest deletes old rows itself (services/ingest/retention.py),
  as it does for ``rejected_messages`` on both paths.
"""

from __future__ import annotations

KINDS = ("streetlight", "cabinet", "meter", "network_point", "counter", "air_quality", "noise", "weather",
         "river_gauge", "gateway")


def statements(timescaledb: bool) -> list[str]:
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    out = [
        f"ALTER TABLE ioc.devices ADD CONSTRAINT devices_kind_known CHECK (kind IN ({kinds}))",
        """ALTER TABLE ioc.rejected_messages
               ADD COLUMN digest bytea,
               ADD COLUMN times_received integer NOT NULL DEFAULT 1,
               ADD COLUMN last_received_at timestamptz""",
        "UPDATE ioc.rejected_messages SET last_received_at = received_at",
        """ALTER TABLE ioc.rejected_messages
               ALTER COLUMN last_received_at SET NOT NULL,
               ALTER COLUMN last_received_at SET DEFAULT now()""",
        # NULL digests (rows from before this migration) never conflict.
        "CREATE UNIQUE INDEX rejected_messages_digest_key ON ioc.rejected_messages (digest)",
        "CREATE INDEX rejected_messages_last_received_idx ON ioc.rejected_messages (last_received_at)",
    ]
    if timescaledb:
        out += [
            "SELECT create_hypertable('ioc.device_status_changes', 'time', chunk_time_interval => INTERVAL '30 days',"
            " migrate_data => true)",
            "SELECT add_retention_policy('ioc.device_events', INTERVAL '400 days')",
            "SELECT add_retention_policy('ioc.device_status_changes', INTERVAL '400 days')",
        ]
    else:
        out.append("CREATE INDEX device_status_changes_time_idx ON ioc.device_status_changes (time)")
    return out
