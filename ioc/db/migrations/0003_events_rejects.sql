-- Device-reported alarms (the `event` channel) and every message ingest refused, with why.
CREATE TABLE ioc.device_events (
    time         timestamptz NOT NULL,
    device_id    text NOT NULL,
    event_type   text NOT NULL,
    ingest_time  timestamptz NOT NULL DEFAULT now(),
    severity     text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    description  text,
    data         jsonb,
    PRIMARY KEY (device_id, event_type, time)
);
CREATE INDEX device_events_time_idx ON ioc.device_events (time DESC);

CREATE TABLE ioc.rejected_messages (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    topic         text NOT NULL,
    device_id     text,                               -- from the topic, when it parsed
    reason        text NOT NULL,                      -- stable code, e.g. 'missing_field'
    detail        text NOT NULL,                      -- human-readable: what and how to fix it
    payload       bytea NOT NULL,                     -- raw bytes, capped (see payload_size)
    payload_size  integer NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX rejected_messages_received_idx ON ioc.rejected_messages (received_at DESC);
CREATE INDEX rejected_messages_reason_idx ON ioc.rejected_messages (reason, received_at DESC);
