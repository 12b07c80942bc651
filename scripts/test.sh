#!/usr/bin/env bash
# The project's one test command (README): installs what the tests need on a fresh
# Debian/Ubuntu machine, then runs lint, types and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto docker-compose chromium fonts-noto-cjk victoria-metrics fonts-wqy-zenhei poppler-utils)

need=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "==> installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi

echo "==> uv sync (locked)"
uv sync --locked --quiet

echo "==> ruff"
uv run --no-sync ruff check .
echo "==> mypy (strict)"
uv run --no-sync mypy protocols/src edge/src cloud/src firmware-sim/src

echo "==> pytest"
set +e
uv run --no-sync pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
