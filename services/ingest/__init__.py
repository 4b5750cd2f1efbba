"""Ingest service: MQTT telemetry, events and status into PostgreSQL/TimescaleDB, acknowledged after commit."""
