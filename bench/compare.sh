#!/usr/bin/env bash
# Builds larder-server (Release) and compares it with redis-server in one run.
# Options are passed to compare.py (--threads, --requests, --clients, --rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
LARDER_BIN=build/larder-server /usr/bin/python3 bench/compare.py "$@"
