#!/bin/sh
# Entry point of the IOC image: turn secret files into the settings the services read, then run the command.
#   IOC_PG_PASSWORD_FILE   -> PGPASSWORD (libpq picks it up; IOC_DATABASE_URL carries no password)
#   IOC_MQTT_PASSWORD_FILE -> the password in IOC_MQTT_URL (mqtt://user@host:port becomes mqtt://user:pw@host:port)
#   IOC_INGEST_SHARED_GROUP_FILE -> IOC_INGEST_SHARED_GROUP (a secret: see deploy/SCALING.md)
# Secrets never sit in the compose file, the image or `docker inspect`.
set -eu
if [ -n "${IOC_PG_PASSWORD_FILE:-}" ]; then
    PGPASSWORD=$(head -n 1 "$IOC_PG_PASSWORD_FILE")
    export PGPASSWORD
fi
if [ -n "${IOC_MQTT_PASSWORD_FILE:-}" ]; then
    password=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(open(sys.argv[1]).readline().rstrip("\n"), safe=""))' "$IOC_MQTT_PASSWORD_FILE")
    IOC_MQTT_URL=$(printf '%s' "$IOC_MQTT_URL" | sed "s|^\(mqtts\{0,1\}://[^:@/]*\)@|\1:${password}@|")
    export IOC_MQTT_URL
fi
if [ -n "${IOC_INGEST_SHARED_GROUP_FILE:-}" ]; then
    IOC_INGEST_SHARED_GROUP=$(head -n 1 "$IOC_INGEST_SHARED_GROUP_FILE")
    export IOC_INGEST_SHARED_GROUP
fi
exec "$@"
