-- Alert history: what Alertmanager notified (webhook, payload version 4), and who acknowledged it.
-- One row per alert occurrence: Alertmanager's fingerprint (a hash of the label set) plus the time it started.
-- Re-sent notifications land on the same row (idempotent); a re-fire after a resolve starts a new occurrence.
CREATE TABLE ioc.alerts (
    fingerprint        text NOT NULL,
    starts_at          timestamptz NOT NULL,
    alertname          text NOT NULL,
    status             text NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity           text,
    area               text,
    city               text,
    ward               text,
    labels             jsonb NOT NULL,
    annotations        jsonb NOT NULL DEFAULT '{}'::jsonb,
    ends_at            timestamptz,                   -- set when resolved
    generator_url      text,
    first_received_at  timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    notifications      integer NOT NULL DEFAULT 1,    -- how many webhook deliveries carried this occurrence
    PRIMARY KEY (fingerprint, starts_at)
);
-- "Active now" is a small set read often (wall display, dashboards); "recent" reads by last change.
CREATE INDEX alerts_firing_idx ON ioc.alerts (starts_at DESC) WHERE status = 'firing';
CREATE INDEX alerts_updated_idx ON ioc.alerts (updated_at DESC);

CREATE TABLE ioc.alert_acks (
    fingerprint  text NOT NULL,
    starts_at    timestamptz NOT NULL,
    acked_by     text NOT NULL,                       -- the API key's name
    acked_at     timestamptz NOT NULL DEFAULT now(),
    comment      text,
    PRIMARY KEY (fingerprint, starts_at, acked_at),
    FOREIGN KEY (fingerprint, starts_at) REFERENCES ioc.alerts (fingerprint, starts_at) ON DELETE CASCADE
);

-- The fleet exporter's snapshot picks the few hundred devices with series of their own (cabinets, network points,
-- counters, gauges, stations) out of ~40 000 by kind on every refresh.
CREATE INDEX devices_kind_idx ON ioc.devices (kind);
