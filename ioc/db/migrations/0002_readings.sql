-- Typed telemetry, one table per payload model. (device_id, time[, lane]) is the idempotency key:
-- MQTT redelivery and replays land on it and store nothing twice.
CREATE TABLE ioc.lighting_readings (
    time               timestamptz NOT NULL,
    device_id          text NOT NULL,
    ingest_time        timestamptz NOT NULL DEFAULT now(),
    power_state        text,
    illuminance_level  real,
    power_w            real,
    voltage_v          real,
    current_a          real,
    energy_kwh         double precision,
    lamp_status        text,
    PRIMARY KEY (device_id, time)
);

CREATE TABLE ioc.cabinet_readings (
    time               timestamptz NOT NULL,
    device_id          text NOT NULL,
    ingest_time        timestamptz NOT NULL DEFAULT now(),
    working_mode       text,
    power_state        text,
    voltage_r_v        real, voltage_s_v real, voltage_t_v real,
    current_r_a        real, current_s_a real, current_t_a real,
    power_r_kw         real, power_s_kw  real, power_t_kw  real,
    energy_kwh         double precision,
    PRIMARY KEY (device_id, time)
);

CREATE TABLE ioc.water_readings (
    time               timestamptz NOT NULL,
    device_id          text NOT NULL,
    ingest_time        timestamptz NOT NULL DEFAULT now(),
    consumption_m3     double precision,
    flow_lph           real,
    pressure_bar       real,
    battery_level      real,
    alarms             text[],
    PRIMARY KEY (device_id, time)
);

CREATE TABLE ioc.traffic_readings (
    time               timestamptz NOT NULL,
    device_id          text NOT NULL,
    lane_id            smallint NOT NULL,
    ingest_time        timestamptz NOT NULL DEFAULT now(),
    intensity          integer NOT NULL,
    occupancy          real,
    avg_speed_kmh      real,
    congested          boolean,
    motorcycles        integer, cars integer, buses integer, trucks integer, bicycles integer,
    PRIMARY KEY (device_id, lane_id, time)
);

CREATE TABLE ioc.environment_readings (
    time               timestamptz NOT NULL,
    device_id          text NOT NULL,
    ingest_time        timestamptz NOT NULL DEFAULT now(),
    pm25 real, pm10 real, no2 real, o3 real, co real, so2 real,
    temperature_c      real,
    relative_humidity  real,
    precipitation_mm   real,
    laeq_db            real,
    lamax_db           real,
    water_level_m      real,
    PRIMARY KEY (device_id, time)
);

-- City-wide "last N minutes" queries scan by time across devices.
CREATE INDEX lighting_readings_time_idx ON ioc.lighting_readings (time DESC);
CREATE INDEX cabinet_readings_time_idx ON ioc.cabinet_readings (time DESC);
CREATE INDEX water_readings_time_idx ON ioc.water_readings (time DESC);
CREATE INDEX traffic_readings_time_idx ON ioc.traffic_readings (time DESC);
CREATE INDEX environment_readings_time_idx ON ioc.environment_readings (time DESC);
