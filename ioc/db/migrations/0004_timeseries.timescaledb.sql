-- TimescaleDB path: the reading tables become hypertables with compression and retention.
-- (On plain PostgreSQL this migration has no variant and is recorded as skipped.)
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- One-day chunks: a full city (~40 000 devices) writes a few million rows a day per family,
-- which keeps each chunk's indexes in memory.
SELECT create_hypertable('ioc.lighting_readings', 'time', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true);
SELECT create_hypertable('ioc.cabinet_readings', 'time', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, migrate_data => true);
SELECT create_hypertable('ioc.water_readings', 'time', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true);
SELECT create_hypertable('ioc.traffic_readings', 'time', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true);
SELECT create_hypertable('ioc.environment_readings', 'time', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, migrate_data => true);
SELECT create_hypertable('ioc.device_events', 'time', chunk_time_interval => INTERVAL '30 days',
                         create_default_indexes => false, migrate_data => true);

-- Compress by device: panels read one device's recent history, and per-device segments compress well.
ALTER TABLE ioc.lighting_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                                       timescaledb.compress_orderby = 'time DESC');
ALTER TABLE ioc.cabinet_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                                      timescaledb.compress_orderby = 'time DESC');
ALTER TABLE ioc.water_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                                    timescaledb.compress_orderby = 'time DESC');
ALTER TABLE ioc.traffic_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id, lane_id',
                                      timescaledb.compress_orderby = 'time DESC');
ALTER TABLE ioc.environment_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                                          timescaledb.compress_orderby = 'time DESC');

-- Compress after a week: gateway back-fills and replays mostly land within days, and inserts into
-- compressed chunks still work (slower) for the rare older one.
SELECT add_compression_policy('ioc.lighting_readings', INTERVAL '7 days');
SELECT add_compression_policy('ioc.cabinet_readings', INTERVAL '7 days');
SELECT add_compression_policy('ioc.water_readings', INTERVAL '7 days');
SELECT add_compression_policy('ioc.traffic_readings', INTERVAL '7 days');
SELECT add_compression_policy('ioc.environment_readings', INTERVAL '7 days');

-- Raw readings kept ~13 months, so this year's festival can be compared with last year's;
-- the rollups (0005) keep five years.
SELECT add_retention_policy('ioc.lighting_readings', INTERVAL '400 days');
SELECT add_retention_policy('ioc.cabinet_readings', INTERVAL '400 days');
SELECT add_retention_policy('ioc.water_readings', INTERVAL '400 days');
SELECT add_retention_policy('ioc.traffic_readings', INTERVAL '400 days');
SELECT add_retention_policy('ioc.environment_readings', INTERVAL '400 days');
