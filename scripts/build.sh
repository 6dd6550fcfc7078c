#!/usr/bin/env bash
# Configures and builds into BUILD_DIR (default: build/), warnings as errors. Extra arguments go to
# cmake (a later -DINGESTD_WERROR=OFF wins).
#   scripts/build.sh                              release build with tests
#   BUILD_DIR=build-asan scripts/build.sh -DINGESTD_SANITIZE=address,undefined
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
targets=${BUILD_TARGETS:-all}
cmake -S "$root" -B "$build_dir" -G Ninja -DINGESTD_WERROR=ON "$@" >/dev/null
# shellcheck disable=SC2086
cmake --build "$build_dir" -j "${JOBS:-2}" --target $targets
