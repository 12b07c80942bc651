#!/usr/bin/env bash
# The one command that runs the platform on one machine (README): a broker, the cloud on
# SQLite under ./data, and a simulated district of five homes with their gateways; prints
# a line per alarm the cloud commits; Ctrl-C stops everything.
#
# Needs Python 3.11+ and git. Installs uv if missing; Mosquitto is used when installed
# (sudo apt-get install mosquitto), else an embedded Python broker. Options go to
# scripts/run.py (bash scripts/run.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  export PATH="$HOME/.local/bin:$PATH"
fi
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (python3 -m pip install --user uv)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "==> pip is missing: installing python3-pip with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  fi
  # Debian 12+ / Ubuntu 23.04+ mark the system Python as externally managed (PEP 668);
  # a --user install of one tool is what that rule's message itself suggests allowing
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv
fi

echo "==> uv sync"
uv sync --locked --quiet
exec uv run --no-sync python scripts/run.py "$@"
