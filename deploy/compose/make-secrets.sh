#!/bin/sh
# Create the compose stack's secrets once (deploy/compose/secrets/, git-ignored, 0600/0644): random passwords, the
# ingest's shared-subscription group name, and a private CA with the broker's server certificate.
#   deploy/compose/make-secrets.sh mqtt.example.gov.vn     # the name devices connect to
# Devices get the CA certificate (secrets/mqtt_ca.crt) to verify the broker. Keep secrets/mqtt_ca.key offline.
set -eu
host=${1:?usage: $0 BROKER_HOSTNAME}
dir=${SECRETS_DIR:-$(cd "$(dirname "$0")" && pwd)/secrets}
mkdir -p "$dir"
cd "$dir"
umask 077
for name in pg_superuser_password pg_owner_password pg_ingest_password pg_api_password pg_grafana_password \
            mqtt_ingest_password mqtt_api_password mqtt_recorder_password mqtt_simulator_password \
            grafana_admin_password; do
    [ -s "$name" ] || openssl rand -base64 32 | tr -d '/+=\n' > "$name"
done
[ -s ingest_shared_group ] || printf 'ioc-ingest-%s' "$(openssl rand -hex 12)" > ingest_shared_group
if [ ! -s mqtt_server.crt ]; then
    ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    openssl req -x509 $ec -keyout mqtt_ca.key -out mqtt_ca.crt -subj "/CN=IOC Dien Bien Phu MQTT CA" -days 3650
    printf 'subjectAltName=DNS:%s\n' "$host" > san.ext
    openssl req $ec -keyout mqtt_server.key -out mqtt_server.csr -subj "/CN=$host"
    openssl x509 -req -in mqtt_server.csr -CA mqtt_ca.crt -CAkey mqtt_ca.key -CAcreateserial -days 825 \
        -extfile san.ext -out mqtt_server.crt
    rm -f mqtt_server.csr san.ext
fi
# The containers run as other users than the one creating the files: readable, in a 0700 directory.
chmod 0644 ./*
chmod 0600 mqtt_ca.key
chmod 0700 "$dir"
echo "secrets in $dir"
