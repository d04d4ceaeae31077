#!/usr/bin/env bash
# Installs the Debian packages Larder needs, only those missing.
#   scripts/deps.sh build   what building larder-server needs
#   scripts/deps.sh test    that, plus the test tools (redis-server as the
#                           reference, redis-tools, pytest, redis-py, clang for the fuzzer,
#                           tcl-tls for Redis's Tcl suite with --tls) and, where
#                           node and npm exist, ioredis, redlock and node-redis for tests/clients/node;
#                           and redis-py 6 (Debian 13's python3-redis, unpacked into .deps/redis-py,
#                           not installed) for the redis-py client-side cache test
set -euo pipefail
PKGS=(build-essential cmake pkg-config libabsl-dev libfmt-dev libjemalloc-dev libxxhash-dev libsqlite3-dev libpq-dev
      libssl-dev sqlite3 liblua5.1-0-dev lua-cjson-dev lua-bitop-dev liblzf-dev)
if [ "${1:-test}" = "test" ]; then
  PKGS+=(libgtest-dev libgmock-dev redis-server redis-tools python3 python3-pytest python3-redis
         clang libclang-rt-14-dev postgresql tcl-tls openssl)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-test}" = "test" ]; then
  # ioredis and redlock (the TLS and transaction tests' Node clients): Debian's node and npm where the
  # machine has no node of its own (a NodeSource node brings its npm).
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null || true
  fi
  if command -v node >/dev/null && command -v npm >/dev/null; then
    (cd "$(dirname "$0")/../tests/clients/node" && npm install --no-audit --no-fund --silent)  # ioredis, redlock
  else
    echo "node/npm not found: skipping tests/clients/node (the ioredis TLS test will be skipped)"
  fi
fi
if [ "${1:-test}" = "test" ]; then
  # redis-py's client-side cache needs redis-py 5.1+; Debian 12 has 4.3.4. Debian 13's python3-redis
  # (pure Python, runs on Debian 12's Python) is fetched from Debian's archive, unpacked under
  # .deps/ and put on PYTHONPATH only by the test that drives it; nothing is installed.
  DEPS="$(cd "$(dirname "$0")/.." && pwd)/.deps"
  if [ ! -d "$DEPS/redis-py/redis" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    tmp="$(mktemp -d)"
    list=/etc/apt/sources.list.d/larder-trixie-fetch.list
    opts=(-o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0)
    echo "deb http://deb.debian.org/debian trixie main" | $SUDO tee "$list" >/dev/null
    if $SUDO apt-get update -qq "${opts[@]}" && (cd "$tmp" && chmod 777 . && apt-get download -qq "${opts[@]}" python3-redis); then
      dpkg-deb -x "$tmp"/python3-redis_*.deb "$tmp/x" && mkdir -p "$DEPS" &&
        rm -rf "$DEPS/redis-py" && mv "$tmp/x/usr/lib/python3/dist-packages" "$DEPS/redis-py"
    else
      echo "could not fetch Debian 13's python3-redis: the redis-py client-side cache test will be skipped"
    fi
    $SUDO rm -f "$list" /var/lib/apt/lists/*_debian_dists_trixie_*
    rm -rf "$tmp"
  fi
fi
