#!/usr/bin/env bash
# `make run`: the simulated city end to end on this machine.
#   1. a Mosquitto broker from the project's config on its own port (the system one keeps its defaults)
#   2. the database migrated (created if missing), the smoke fleet registered
#   3. one ingest worker (metrics and health on :9108)
#   4. the query API and city status page (IOC_API_PORT, default 8000), with a fresh viewer key printed
#   5. the smoke fleet publishing at IOC_SIM_SPEED× (default 60: an hour of city life a minute)
# Ctrl-C stops everything; the data stays in the database for the dashboards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
var="$root/var"
mkdir -p "$var/mosquitto"
port=${IOC_DEV_MQTT_PORT:-1884}
export IOC_MQTT_URL=${IOC_MQTT_URL:-mqtt://127.0.0.1:$port}
export IOC_DATABASE_URL=${IOC_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/ioc}
ioc="$root/.venv/bin/ioc"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    sed -e "s|@PORT@|$port|" -e "s|@VAR@|$var|" -e "s|@ROOT@|$root|" deploy/mosquitto/dev.conf.template \
        > "$var/mosquitto/mosquitto.conf"
    [ "$(id -u)" -eq 0 ] && echo "user root" >> "$var/mosquitto/mosquitto.conf"
    mosquitto -c "$var/mosquitto/mosquitto.conf" & pids+=($!)
    sleep 0.5
    echo "broker: $IOC_MQTT_URL (log: var/mosquitto/mosquitto.log)"
fi

"$ioc" db migrate
"$ioc" sim fleet --size smoke --out "$var/fleet-smoke.jsonl"
"$ioc" devices import "$var/fleet-smoke.jsonl"

"$ioc" ingest & pids+=($!)
sleep 2
echo "ingest: metrics http://127.0.0.1:9108/metrics, health http://127.0.0.1:9108/health"

api_port=${IOC_API_PORT:-8000}
"$ioc" api-keys revoke make-run >/dev/null 2>&1 || true   # one live key for this script, not one per run
key=$("$ioc" api-keys create make-run --role viewer 2>/dev/null)
"$ioc" api --port "$api_port" & pids+=($!)
sleep 2
echo "API: http://127.0.0.1:$api_port/docs (key: $key)"
echo "city status page: http://127.0.0.1:$api_port/#key=$key"
"$ioc" sim run --fleet smoke --speed "${IOC_SIM_SPEED:-60}" --duration "${IOC_SIM_DURATION:-1d}" --leave-online
"$ioc" db info
