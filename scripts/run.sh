#!/usr/bin/env bash
# Installs what is missing, builds larder-server (Release) and starts it in the
# foreground on port 6379 with the embedded default: the SQLite demo shop
# (examples/shop), so that `redis-cli HGETALL user:42` answers from the
# database. Extra arguments are larder-server options (e.g. --port 7000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLARDER_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
if [ ! -f examples/shop/shop.db ]; then
  sqlite3 examples/shop/shop.db < examples/shop/shop.sql
  echo "Built the demo database examples/shop/shop.db" >&2
fi
args=("$@")
# Debian's redis-server service (if one runs) would hold port 6379.
if [ $# -eq 0 ] && command -v ss >/dev/null && ss -ltn 2>/dev/null | grep -q ':6379 '; then
  echo "Port 6379 is in use (a redis-server service?); starting on 6380 instead." >&2
  args=(--port 6380)
fi
exec build/larder-server examples/shop/larder.conf "${args[@]}"
