#!/bin/sh
# First start of the database volume only (docker-entrypoint-initdb.d): the schema owner and the service roles,
# with LOGIN and their passwords from the secret files. `ioc db migrate` (the migrate service, as ioc_owner)
# then creates the schema and grants these roles exactly what they need (ioc/db/roles.py).
set -eu
pw() { sed -n 1p "/run/secrets/$1" | sed "s/'/''/g"; }
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE ioc_owner LOGIN PASSWORD '$(pw pg_owner_password)';
CREATE ROLE ioc_ingest LOGIN PASSWORD '$(pw pg_ingest_password)';
CREATE ROLE ioc_api LOGIN PASSWORD '$(pw pg_api_password)';
CREATE ROLE ioc_grafana LOGIN PASSWORD '$(pw pg_grafana_password)';
ALTER DATABASE ioc OWNER TO ioc_owner;
-- Only the roles `ioc db migrate` grants (and the owner) may connect or make temp tables.
REVOKE ALL ON DATABASE ioc FROM PUBLIC;
SQL
# TimescaleDB is created by the superuser here, so the owner needs no superuser right later.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname ioc -c "CREATE EXTENSION IF NOT EXISTS timescaledb"
