#!/usr/bin/env bash
# The project's one test command (README): installs what the tests need on a fresh
# Debian/Ubuntu machine, then runs lint, types and the whole test suite on SQLite, then
# the tests that touch the cloud's database again on PostgreSQL (a server this script
# starts in a temp dir on a free loopback port and stops on exit). Fails if either fails.
#
#   ELDERCARE_TEST_POSTGRES=0     skip the PostgreSQL run
#   ELDERCARE_TEST_PG_PATHS="..." what the PostgreSQL run runs (default: the folders below)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto docker-compose chromium fonts-noto-cjk victoria-metrics postgresql fonts-wqy-zenhei poppler-utils openssl)
PG_PATHS=${ELDERCARE_TEST_PG_PATHS:-tests/cloud tests/installer tests/console tests/e2e}

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
uv run --no-sync mypy protocols/src transport/src edge/src cloud/src firmware-sim/src

# -- PostgreSQL for the second run: our own throw-away server, never the system's ---------
PG_DIR=""
PG_PID=""
stop_postgres() {
  if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -INT "$PG_PID" 2>/dev/null || true  # "fast" shutdown of the postmaster we started
    for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PG_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_DIR" ]; then rm -rf "$PG_DIR"; fi
}
trap stop_postgres EXIT

start_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin" >&2
    return 1
  fi
  PG_DIR=$(mktemp -d /tmp/eldercare-pg.XXXXXX)
  local as=()
  if [ "$(id -u)" -eq 0 ]; then  # initdb refuses to run as root
    chown postgres:postgres "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${as[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync \
    --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # a test server: no fsync (the tests kill clients, never this server), loopback only
  "${as[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $port -h 127.0.0.1 -k $PG_DIR -F -c max_connections=300 -c full_page_writes=off -c synchronous_commit=off" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
  export ELDERCARE_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "==> PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $PG_PID)"
}

echo "==> pytest (SQLite)"
set +e
uv run --no-sync pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  rc=1
fi

pg_rc=0
if [ "${ELDERCARE_TEST_POSTGRES:-1}" != "0" ]; then
  start_postgres
  # the options of this command (e.g. -x, -q) apply; the paths are the database's tests
  opts=()
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
      -k | -m | -p | --maxfail | --deselect) opts+=("${args[i]}" "${args[i + 1]:-}"); i=$((i + 1)) ;;
      -*) opts+=("${args[i]}") ;;
    esac
  done
  echo "==> pytest (PostgreSQL): $PG_PATHS"
  set +e
  # shellcheck disable=SC2086  # PG_PATHS is a list of paths
  uv run --no-sync pytest "${opts[@]}" $PG_PATHS
  pg_rc=$?
  set -e
  if [ "$pg_rc" -eq 5 ]; then
    echo "pytest (PostgreSQL) collected no tests" >&2
    pg_rc=1
  fi
fi

echo "==> SQLite run: exit $rc; PostgreSQL run: exit $pg_rc"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exit "$pg_rc"
