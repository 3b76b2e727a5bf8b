#!/usr/bin/env bash
# Create the virtual environment (if missing) and install the project into it.
#   bash scripts/setup.sh            what the pipeline needs to run (dvc repro, sweeps, the UI, predict,
#                                    the vega scripts of dvc plots pages: scripts/fetch-plot-scripts.sh)
#   bash scripts/setup.sh --test     also the test tools ([test] extras) and the services the tests
#                                    drive (chromium, PostgreSQL: scripts/install-test-services.sh)
#   bash scripts/setup.sh --dry-run  say what would be installed; change nothing (pip install --dry-run)
# VENV=path picks another environment folder (default .venv); PYTHON=python3.12 another interpreter.
# Safe to run again: pip installs only what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST=0
DRY=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $arg (use --test and/or --dry-run; --help explains them)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# The floor pyproject.toml declares: constraints.txt pins numpy, scipy, pandas and scikit-learn
# releases that publish no wheels for Python 3.10.
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python >= 3.11 is needed ($PYTHON is $("$PYTHON" --version 2>&1 || echo missing));" \
       "run again with PYTHON=/path/to/python3.11 (or newer)" >&2
  exit 2
fi

run() {  # show each step; in a dry run, only show it
  echo "[setup] $*"
  if [ "$DRY" = 0 ]; then "$@"; fi
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $("$PYTHON" --version)"
  if [ "$DRY" = 1 ]; then
    # A throwaway environment lets pip resolve for the interpreter the real one would use.
    VENV=$(mktemp -d)/venv
    trap 'rm -rf "$(dirname "$VENV")"' EXIT
  fi
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

# Fashion-MNIST (out-of-distribution inputs for the robustness stage) from Debian's package where
# we may install it; elsewhere the stage downloads it through torchvision.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  if [ "$DRY" = 1 ]; then
    echo "[setup] would install Debian's dataset-fashion-mnist"
  else
    echo "[setup] installing Debian's dataset-fashion-mnist"
    apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; } ||
      echo "[setup] warning: could not install dataset-fashion-mnist; the robustness stage will try torchvision's mirrors"
  fi
fi

target="."
if [ "$TEST" = 1 ]; then target=".[test]"; fi
if [ "$DRY" = 1 ]; then
  echo "[setup] what pip would install into $VENV for $target (nothing is changed):"
  "${PIP[@]}" install --dry-run --progress-bar off -c constraints.txt -e "$target" | grep -E "^(Would install|ERROR)" ||
    echo "[setup] nothing to install: $VENV is up to date"
  echo "[setup] then: bash scripts/fetch-plot-scripts.sh"
  if [ "$TEST" = 1 ]; then echo "[setup] then: bash scripts/install-test-services.sh"; fi
  exit 0
fi
run "${PIP[@]}" install --upgrade --quiet pip
# No --quiet: pip names each package as it is collected and downloaded (torch alone is large).
echo "[setup] installing the project ($target); the first time takes a few minutes"
run "${PIP[@]}" install --progress-bar on -c constraints.txt -e "$target"
# vega for `dvc plots show` pages, so they draw offline; without it they need the network.
run bash scripts/fetch-plot-scripts.sh ||
  echo "[setup] warning: could not fetch the plot scripts; dvc plots show needs the network until bash scripts/fetch-plot-scripts.sh succeeds"
if [ "$TEST" = 1 ]; then
  run bash scripts/install-test-services.sh
fi
echo "[setup] ready: source $VENV/bin/activate  (commands: pipeline-train, pipeline-predict, ... see README)"
