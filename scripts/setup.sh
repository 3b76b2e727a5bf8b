#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test tools.
#   bash scripts/setup.sh          the environment for running the pipeline
#   bash scripts/setup.sh --test   also the services the tests drive (chromium, PostgreSQL)
# Safe to run again: it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: Python >= 3.10 is needed ($PYTHON is $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
# Fashion-MNIST (out-of-distribution inputs for the robustness stage) from Debian's
# package where we may install it; elsewhere the stage downloads it through torchvision.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Debian's dataset-fashion-mnist"
  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
     { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }) ||
    echo "[setup] warning: could not install dataset-fashion-mnist; the robustness stage will try torchvision's mirrors"
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "[setup] installing the project and its dependencies (first time: a few minutes, torch is large)"
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
if [ "${1:-}" = "--test" ]; then
  bash scripts/install-test-services.sh
fi
echo "[setup] ready: source .venv/bin/activate"
