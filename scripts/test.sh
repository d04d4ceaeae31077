#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test: GoogleTest
# units, the integration suite (real binary over sockets) and the differential
# harness against Debian's redis-server. Set LARDER_SANITIZE=1 to build and run
# under AddressSanitizer + UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
# Tests start their own servers; the Debian service must not hold port 6379.
if pgrep -x redis-server >/dev/null 2>&1 && command -v systemctl >/dev/null; then
  systemctl stop redis-server 2>/dev/null || true
fi
BUILD=build
EXTRA=()
if [ "${LARDER_SANITIZE:-0}" = "1" ]; then
  BUILD=build-asan
  EXTRA=(-DLARDER_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
else
  EXTRA=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$BUILD" -DLARDER_TESTS=ON "${EXTRA[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
# Keep the fuzz target building (it needs clang's libFuzzer runtime).
if command -v clang++ >/dev/null; then
  CXX=clang++ cmake -S . -B build-fuzz -DLARDER_FUZZ=ON -DLARDER_SANITIZE=ON -DLARDER_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j"$(nproc)" --target fuzz_resp_parser fuzz_rdb_load fuzz_restore_payload fuzz_aof_load \
    fuzz_json_members
  corpus=$(mktemp -d)
  build-fuzz/fuzz_resp_parser -runs=20000 "$corpus" fuzz/seeds >/dev/null 2>&1 || { echo "fuzz smoke run failed"; exit 1; }
  rm -rf "$corpus"
  corpus=$(mktemp -d)
  build-fuzz/fuzz_rdb_load -runs=20000 "$corpus" fuzz/seeds-rdb >/dev/null 2>&1 || { echo "rdb fuzz smoke run failed"; exit 1; }
  rm -rf "$corpus"
  corpus=$(mktemp -d)
  build-fuzz/fuzz_restore_payload -runs=20000 "$corpus" fuzz/seeds-restore >/dev/null 2>&1 || { echo "restore fuzz smoke run failed"; exit 1; }
  rm -rf "$corpus"
  corpus=$(mktemp -d)
  build-fuzz/fuzz_aof_load -runs=20000 "$corpus" fuzz/seeds-aof >/dev/null 2>&1 || { echo "aof fuzz smoke run failed"; exit 1; }
  rm -rf "$corpus"
  corpus=$(mktemp -d)
  build-fuzz/fuzz_json_members -runs=20000 "$corpus" fuzz/seeds-json >/dev/null 2>&1 || { echo "json fuzz smoke run failed"; exit 1; }
  rm -rf "$corpus"
fi
cd "$BUILD"
ctest --output-on-failure --timeout 1500
