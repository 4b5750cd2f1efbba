#!/usr/bin/env bash
# Install the system parts the project runs and tests on (Debian/Ubuntu): PostgreSQL 15, Mosquitto, Prometheus and
# Alertmanager (rule and routing tests, end-to-end alerting), headless Chromium (status page tests) and
# docker-compose (validates the production stack without an engine).
# Does nothing when they are already there.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v pg_ctlcluster >/dev/null || need+=(postgresql-common)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v python3 >/dev/null || need+=(python3 python3-venv)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
# No recommends: Prometheus would pull in node-exporter and friends, which the tests do not use.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
