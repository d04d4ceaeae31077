#!/usr/bin/env bash
# Installs what is missing, builds larder-server (Release) and starts it in the
# foreground on port 6379 (pass any larder-server options, e.g. --port 7000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/larder-server "$@"
