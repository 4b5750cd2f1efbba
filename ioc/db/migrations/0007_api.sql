-- Query API: API keys, device decommissioning, and the latest-value row per device kept by ingest.

-- Keys are stored as the SHA-256 of a 256-bit random token: a high-entropy secret needs no slow hash, and the
-- token itself is shown once, at creation. `prefix` (the token's first characters) lets people tell keys apart.
CREATE TABLE ioc.api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    key_hash    bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- A decommissioned device keeps its history; ingest rejects its new messages (reason decommissioned_device).
ALTER TABLE ioc.devices ADD COLUMN decommissioned_at timestamptz;

-- The newest reading of each device (by reading time, never arrival order), written by ingest in the same
-- transaction as the reading: "latest value of every device" is then one scan of a 40 000-row table.
-- last_reading_time stays the newest device timestamp of any message (events too); last_reading_at is the
-- time of the reading held in last_reading.
ALTER TABLE ioc.device_state ADD COLUMN last_reading_at timestamptz;
ALTER TABLE ioc.device_state ADD COLUMN last_reading jsonb;

-- Device pages are keyed by device_id within a city; ward filters are common on maps and KPI pages.
CREATE INDEX devices_city_ward_idx ON ioc.devices (city, ward);
