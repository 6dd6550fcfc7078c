// Spool recovery on arbitrary files: the input becomes a segment file (and, when its first byte
// says so, a cursor file) in an empty directory; the spool is opened, everything in it claimed
// and released (each record once not delivered, then delivered), a batch appended, and the spool
// closed and opened again. Nothing may crash, leak or hang; damage may only be reported.
//
// Input: byte 0 is flags: bit 0 prepends a valid segment header, bit 1 takes the last
// (byte 1 % 64) bytes as the cursor file's content. The rest is the segment file.
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "fake_context.h"
#include "reliability/spool.h"

namespace {

namespace fs = std::filesystem;

const fs::path& base_dir() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "fuzz_spool.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) std::abort();
    return fs::path(tmpl);
  }();
  return dir;
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void drain(ingestd::reliability::Spool& spool) {
  while (auto claim = spool.claim()) {
    if (!claim->batch) std::abort();
    spool.release(*claim, false);
    auto again = spool.claim();
    if (!again || again->segment != claim->segment || again->index != claim->index) std::abort();
    spool.release(*again, true);
  }
  if (spool.records() != 0 || spool.events() != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ingestd::reliability::Spool;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.empty()) return 0;
  uint8_t flags = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  std::string_view cursor;
  if ((flags & 2) && !in.empty()) {
    size_t n = std::min<size_t>(static_cast<uint8_t>(in[0]) % 64, in.size() - 1);
    in.remove_prefix(1);
    cursor = in.substr(in.size() - n);
    in.remove_suffix(n);
  }
  std::string segment;
  if (flags & 1) segment.assign("INGSPOOL\x01\x00\x00\x00", 12);
  segment.append(in);

  fs::path dir = base_dir() / "spool";
  fs::remove_all(dir);
  fs::create_directory(dir);
  write_file(dir / "00000000000000000003.seg", segment);
  if (flags & 2) write_file(dir / "cursor", cursor);

  ingestd::config::SpoolConfig config;
  config.fsync = ingestd::config::SpoolConfig::Fsync::kNever;
  config.segment_size = 4096;
  config.max_size = 1 << 20;
  ingestd::testing::FakeClock clock;
  Spool::Recovery report;
  std::string error;
  auto spool = Spool::open(dir, config, clock, report, error);
  if (!spool) {
    std::fprintf(stderr, "open failed: %s\n", error.c_str());
    std::abort();
  }
  drain(*spool);
  ingestd::Batch batch;
  batch.add("after recovery", 1);
  if (spool->append(batch).status != Spool::AppendStatus::kOk) std::abort();
  spool->close();
  spool = Spool::open(dir, config, clock, report, error);
  if (!spool || report.records != 1 || report.corrupt_records != 0 || report.torn_bytes != 0)
    std::abort();
  drain(*spool);
  return 0;
}
