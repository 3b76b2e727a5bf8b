#!/usr/bin/env bash
# System services the integration tests drive: headless Chromium (the MLflow UI
# browser test, through Playwright with the system browser) and PostgreSQL (the
# MLflow tracking-server test). Idempotent: installs only what is missing.
# Debian/Ubuntu, as root (or with sudo available). Nothing is started here; the
# tests start throwaway instances on loopback and stop them again.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)

if [ ${#need[@]} -eq 0 ]; then
    echo "install-test-services: chromium and postgresql already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-test-services: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# The Debian postgresql package starts a system cluster; the tests do not need it.
if [[ " ${need[*]} " == *" postgresql "* ]] && command -v service >/dev/null 2>&1; then
    $SUDO service postgresql stop >/dev/null 2>&1 || true
fi
