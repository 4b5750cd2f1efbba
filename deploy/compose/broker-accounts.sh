#!/bin/sh
# The compose stack's broker accounts (the broker-accounts service): services' accounts from their secret files,
# devices' accounts and ACL from the registry; new devices' secrets go once to a new file in $ISSUED_DIR.
set -eu
secrets=${SECRETS_DIR:-/run/secrets}
accounts=${ACCOUNTS_DIR:-/accounts}
issued=${ISSUED_DIR:-/issued}
if [ -n "${IOC_PG_PASSWORD_FILE:-}" ]; then
    PGPASSWORD=$(head -n 1 "$IOC_PG_PASSWORD_FILE")
    export PGPASSWORD
fi
for service in ingest api recorder simulator; do
    ioc devices credentials service "ioc-$service" --passwd "$accounts/services.passwd" \
        --password-file "$secrets/mqtt_${service}_password"
done
ioc devices credentials sync --passwd "$accounts/devices.passwd" --acl "$accounts/devices.acl" \
    --secrets-out "$issued/device-secrets-$(date -u +%Y%m%dT%H%M%SZ).csv"
