// bench_spool_io: the disk spool's write and read throughput, for bench/spool/run.py.
//
//   bench_spool_io DIR BATCHES [EVENTS_PER_BATCH]
//
// Opens a Spool (the core's, ingestd_reliability) in DIR/spool with `fsync: interval` (1 s, the
// default) and a max_size that never binds, appends BATCHES batches of EVENTS_PER_BATCH (1024)
// events of about 100 bytes of raw JSON each (what a source without a parser hands a sink), then
// calls sync() so that everything appended is on disk, as `dd conv=fdatasync` ends. It then reads
// everything back as replay does: claim() and release(delivered) until nothing is left, which
// decodes and checks every record and deletes each segment once it is delivered. The batches are
// built before the clock starts; the spool encodes each one in append().
//
// Prints one JSON line on stdout:
//   {"batches": B, "events": N, "bytes": <segment bytes on disk>, "append_s": S, "sync_s": S,
//    "read_s": S, "segments": K}
// Exit status 1 when the spool cannot be opened, an append fails, or the read does not give back
// exactly what was appended.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "reliability/spool.h"
#include "runtime/system_clock.h"

namespace {

using ingestd::Batch;
using ingestd::BatchPtr;
using ingestd::reliability::Spool;

constexpr int kDistinctBatches = 8;  // appended in turn: building them is not what is measured

// Events like the generator's in the Kafka and outage benchmarks: about 100 bytes each.
BatchPtr make_batch(int index, int events) {
  static constexpr const char* kDevices[] = {"xbox_one", "ps4", "roku", "apple_tv"};
  static constexpr const char* kTitles[] = {"narcos", "dark", "ozark", "mindhunter"};
  auto batch = std::make_unique<Batch>();
  batch->origin.component = "gen";
  batch->ingest_time_ns = 1'700'000'000'000'000'000;
  batch->reserve(events, 0);
  for (int i = 0; i < events; ++i) {
    uint64_t seq = uint64_t(index) * events + i;
    std::string raw = fmt::format(
        R"({{"seq":{},"device":"{}","sev":"success","title":"{}","country":"UK","n":{:05}}})", seq,
        kDevices[seq % 4], kTitles[(seq / 4) % 4], (seq * 7919) % 100000);
    batch->add(batch->copy(raw), batch->ingest_time_ns + int64_t(i));
  }
  return batch;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int fail(const std::string& message) {
  std::fprintf(stderr, "bench_spool_io: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) return fail("usage: bench_spool_io DIR BATCHES [EVENTS_PER_BATCH]");
  const std::filesystem::path dir = std::filesystem::path(argv[1]) / "spool";
  const long batches = std::strtol(argv[2], nullptr, 10);
  const long events_per_batch = argc == 4 ? std::strtol(argv[3], nullptr, 10) : 1024;
  if (batches < 1 || events_per_batch < 1 || events_per_batch > 1'000'000)
    return fail("BATCHES and EVENTS_PER_BATCH must be positive");

  std::vector<BatchPtr> inputs;
  for (int i = 0; i < kDistinctBatches; ++i)
    inputs.push_back(make_batch(i, static_cast<int>(events_per_batch)));

  ingestd::config::SpoolConfig config;
  config.fsync = ingestd::config::SpoolConfig::Fsync::kInterval;
  config.fsync_interval_ns = 1'000'000'000;
  config.max_size = uint64_t{1} << 50;  // never binds here
  ingestd::runtime::SystemClock clock;
  Spool::Recovery recovery;
  std::string error;
  std::unique_ptr<Spool> spool = Spool::open(dir, config, clock, recovery, error);
  if (!spool) return fail(fmt::format("cannot open a spool in {}: {}", dir.string(), error));
  if (recovery.records > 0)
    return fail(fmt::format("{} is not empty ({} records)", dir.string(), recovery.records));

  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < batches; ++i) {
    Spool::AppendResult r = spool->append(*inputs[i % kDistinctBatches]);
    if (r.status != Spool::AppendStatus::kOk)
      return fail(fmt::format("append {} failed: {}", i, r.error.empty() ? "full" : r.error));
  }
  const double append_s = seconds_since(start);
  start = std::chrono::steady_clock::now();
  spool->sync();
  const double sync_s = seconds_since(start);
  const uint64_t bytes = spool->bytes();
  const uint64_t segments = spool->segments();

  start = std::chrono::steady_clock::now();
  uint64_t read_events = 0;
  long read_batches = 0;
  while (std::optional<Spool::Claim> claim = spool->claim()) {
    read_events += claim->batch->size();
    ++read_batches;
    spool->release(*claim, true);
  }
  const double read_s = seconds_since(start);
  const uint64_t events = uint64_t(batches) * uint64_t(events_per_batch);
  if (read_batches != batches || read_events != events || spool->records() != 0 ||
      spool->totals().corrupt_records != 0)
    return fail(fmt::format("read back {} batches, {} events ({} corrupt records); appended {}, {}",
                            read_batches, read_events, spool->totals().corrupt_records, batches,
                            events));
  spool->close();

  std::printf(
      "{\"batches\": %ld, \"events\": %llu, \"bytes\": %llu, \"segments\": %llu, "
      "\"append_s\": %.6f, \"sync_s\": %.6f, \"read_s\": %.6f}\n",
      batches, static_cast<unsigned long long>(events), static_cast<unsigned long long>(bytes),
      static_cast<unsigned long long>(segments), append_s, sync_s, read_s);
  return 0;
}
