#!/usr/bin/env bash
# System services the integration tests drive: headless Chromium (the MLflow UI
# browser test, through Playwright with the system browser), PostgreSQL (the
# MLflow tracking-server test) and SLURM with munge (tests/test_slurm.py starts a
# one-host cluster of its own). Idempotent: installs only what is missing.
# Debian/Ubuntu, as root (or with sudo available). Nothing is started here; the
# tests start throwaway instances on loopback and stop them again.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v slurmctld >/dev/null 2>&1 || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need+=(munge)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# munged refuses to start without its key; Debian's package usually creates it.
munge_key() {
    if command -v munged >/dev/null 2>&1 && ! $SUDO test -f /etc/munge/munge.key; then
        $SUDO mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
            $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        $SUDO chown munge:munge /etc/munge/munge.key
        $SUDO chmod 400 /etc/munge/munge.key
    fi
}

if [ ${#need[@]} -eq 0 ]; then
    munge_key
    echo "install-test-services: chromium, postgresql, slurm and munge already present"
    exit 0
fi

echo "install-test-services: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# The Debian postgresql package starts a system cluster; the tests do not need it.
if [[ " ${need[*]} " == *" postgresql "* ]] && command -v service >/dev/null 2>&1; then
    $SUDO service postgresql stop >/dev/null 2>&1 || true
fi
# The packages start system daemons where systemd runs; the tests start their own on other ports.
for service in slurmctld slurmd munge; do
    if [[ " ${need[*]} " == *" slurm-wlm "* || " ${need[*]} " == *" munge "* ]] && command -v service >/dev/null 2>&1; then
        $SUDO service "$service" stop >/dev/null 2>&1 || true
    fi
done
munge_key
