-- Device registry, device state, and the bookkeeping every other table leans on.
CREATE SCHEMA IF NOT EXISTS ioc;

CREATE TABLE ioc.devices (
    device_id         text PRIMARY KEY,
    family            text NOT NULL CHECK (family IN ('lighting', 'water', 'traffic', 'environment', 'gateway')),
    kind              text NOT NULL,
    city              text NOT NULL,
    ward              text,
    site              text,                          -- street or named site
    lat               double precision CHECK (lat BETWEEN -90 AND 90),
    lon               double precision CHECK (lon BETWEEN -180 AND 180),
    report_interval_s integer NOT NULL CHECK (report_interval_s > 0),
    gateway_id        text,                          -- devices behind a gateway / network server
    parent_id         text,                          -- cabinet of a lamp, DMA of a meter, ...
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_city_family_idx ON ioc.devices (city, family, kind);
CREATE INDEX devices_gateway_idx ON ioc.devices (gateway_id) WHERE gateway_id IS NOT NULL;
CREATE INDEX devices_parent_idx ON ioc.devices (parent_id) WHERE parent_id IS NOT NULL;

-- One row per device, updated by ingest: the freshness and status panels read this, not the big tables.
CREATE TABLE ioc.device_state (
    device_id          text PRIMARY KEY REFERENCES ioc.devices (device_id) ON DELETE CASCADE,
    last_seen          timestamptz,                  -- ingest time of the newest message
    last_reading_time  timestamptz,                  -- newest device timestamp
    status             text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
    status_changed_at  timestamptz
);

CREATE TABLE ioc.device_status_changes (
    time       timestamptz NOT NULL,
    device_id  text NOT NULL,
    status     text NOT NULL CHECK (status IN ('online', 'offline')),
    cause      text NOT NULL DEFAULT 'device'        -- 'device' or 'gateway:<id>'
);
CREATE INDEX device_status_changes_device_time_idx ON ioc.device_status_changes (device_id, time DESC);
