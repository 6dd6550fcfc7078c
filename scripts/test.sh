#!/usr/bin/env bash
# Installs what is needed, checks formatting, builds, and runs every test:
#   1. the release build: unit and integration tests (ctest), then the pipeline, reload, Kafka
#      sink, Kafka source, spool, HTTP source, SSE source and admin scrape benchmarks (the outage
#      one shortened to 10 s; bench/README.md);
#   2. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (at -O0 with
#      assertions on: the Beast and librdkafka plugin sources take minutes each at -O2);
#   3. the runtime unit tests (queue, threads) under ThreadSanitizer, then the libFuzzer targets
#      (tests/fuzz) for 20 s each, two at a time;
#   4. the Debian packages, built from a clean copy and checked by lintian, then the end-to-end
#      test: installed and operated under a real systemd in a container (tests/e2e/).
# QUICK=1 runs only step 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

step() { printf '\n=== %s (at %d s)\n' "$*" "$SECONDS"; }

step "format"
"$root/scripts/check-format.sh"

step "release build"
BUILD_DIR="$root/build" "$root/scripts/build.sh"
step "unit and integration tests"
ctest --test-dir "$root/build" --output-on-failure -j 2 -LE e2e

step "pipeline benchmark (figures; fails only when the pipeline does, not on a missed target)"
cmake --build "$root/build" --target bench
step "reload pause benchmark (figures; fails only when a reload does, not on a missed target)"
cmake --build "$root/build" --target bench_reload
step "Kafka sink benchmark (figures; fails only when delivery does, not on a missed target)"
cmake --build "$root/build" --target bench_kafka
step "Kafka source benchmarks (figures; fail only on a wrong count, not on a missed target)"
cmake --build "$root/build" --target bench_kafka_source
step "spool benchmarks: write vs dd, a 10 s broker outage (figures; fail only on a lost event)"
OUTAGE_S=10 cmake --build "$root/build" --target bench_spool bench_outage
step "HTTP source benchmark vs nginx (figures; fails only on a wrong count, not on a missed target)"
cmake --build "$root/build" --target bench_http_source
step "SSE source benchmark (figures; fails only on a wrong count, not on a missed target)"
cmake --build "$root/build" --target bench_sse
step "admin scrape cost benchmark, about 95 s (figures; fails only on a wrong count or a failed scrape)"
cmake --build "$root/build" --target bench_admin

if [ "${QUICK:-0}" = 1 ]; then
  exit 0
fi

step "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
BUILD_DIR="$root/build-asan" BUILD_TARGETS="unit_config unit_graph unit_reliability unit_runtime unit_plugins unit_control unit_loadgen unit_admin unit_ingestctl" \
  "$root/scripts/build.sh" -DINGESTD_SANITIZE=address,undefined -DINGESTD_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1"
ctest --test-dir "$root/build-asan" --output-on-failure -j 2 -L unit

step "runtime unit tests under ThreadSanitizer"
BUILD_DIR="$root/build-tsan" BUILD_TARGETS="unit_runtime" \
  "$root/scripts/build.sh" -DINGESTD_SANITIZE=thread -DINGESTD_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1"
ctest --test-dir "$root/build-tsan" --output-on-failure -j 2 -L unit -R '^runtime\.'

step "fuzz targets (libFuzzer, clang): spool recovery, batch codec, JSON and Prometheus parsers, SSE framer, 20 s each"
CXX=clang++ BUILD_DIR="$root/build-fuzz" \
  BUILD_TARGETS="fuzz_spool_recovery fuzz_batch_codec fuzz_json_parser fuzz_prometheus_parser fuzz_sse_framer" \
  "$root/scripts/build.sh" -DINGESTD_FUZZ=ON -DINGESTD_BUILD_BENCH=OFF
fuzz() {
  # New inputs go to a corpus of the build's own; a crash leaves its input in build-fuzz/.
  mkdir -p "$root/build-fuzz/corpus/$1"
  if "$root/build-fuzz/tests/fuzz/fuzz_$1" -max_total_time=20 -artifact_prefix="$root/build-fuzz/" \
    "$root/build-fuzz/corpus/$1" "$root/tests/fuzz/corpus/$1" >"$root/build-fuzz/$1.log" 2>&1; then
    echo "fuzz_$1: $(grep -E '^Done|^#[0-9]+ *DONE' "$root/build-fuzz/$1.log" | tail -n 1)"
  else
    tail -n 60 "$root/build-fuzz/$1.log"
    echo "fuzz_$1 failed; its whole log is build-fuzz/$1.log" >&2
    return 1
  fi
}
# Two at a time, one per core.
fuzz spool_recovery & a=$!; fuzz batch_codec & b=$!; wait $a; wait $b
fuzz json_parser & a=$!; fuzz prometheus_parser & b=$!; wait $a; wait $b
fuzz sse_framer

step "Debian packages (dpkg-buildpackage from a clean copy, lintian)"
"$root/scripts/build-debs.sh" "$root/build/debs"
step "end to end under a real systemd (the packages in a booted container)"
ctest --test-dir "$root/build" --verbose -L e2e
step "done in $SECONDS s"
