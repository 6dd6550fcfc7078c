#!/usr/bin/env bash
# Configures and builds into BUILD_DIR (default: build/), warnings as errors. Extra arguments go to
# cmake (a later -DINGESTD_WERROR=OFF wins).
#   scripts/build.sh                              release build with tests (-O2 -g1)
#   BUILD_DIR=build-asan scripts/build.sh -DINGESTD_SANITIZE=address,undefined
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
targets=${BUILD_TARGETS:-all}
# The release build keeps line tables only (-g1): enough for backtraces, perf and callgrind by
# line, and about a quarter less compile time than full debug information (-g).
cmake -S "$root" -B "$build_dir" -G Ninja -DINGESTD_WERROR=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "$@" >/dev/null
# shellcheck disable=SC2086
cmake --build "$build_dir" -j "${JOBS:-2}" --target $targets
