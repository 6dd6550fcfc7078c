#include "gunzip.h"

#include <zlib.h>

#include <algorithm>

namespace ingestd::net {

struct Gunzip::State {
  z_stream z{};
  bool ready = false;
};

Gunzip::Gunzip() = default;

Gunzip::~Gunzip() {
  if (state_) {
    if (state_->ready) inflateEnd(&state_->z);
    delete state_;
  }
}

Gunzip::Result Gunzip::inflate(std::string_view in, uint64_t limit, std::string& out) {
  constexpr size_t kStep = 64 << 10;
  out.clear();
  if (!state_) state_ = new State;
  z_stream& z = state_->z;
  if (!state_->ready) {
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return Result::kCorrupt;
    state_->ready = true;
  } else if (inflateReset(&z) != Z_OK) {
    return Result::kCorrupt;
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  if (in.empty()) return Result::kTruncated;
  for (;;) {
    const size_t used = out.size();
    const size_t room = std::min<uint64_t>(kStep, limit + 1 - used);
    out.resize(used + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    z.avail_out = static_cast<uInt>(room);
    const int rc = ::inflate(&z, Z_NO_FLUSH);
    out.resize(used + room - z.avail_out);
    if (out.size() > limit) return Result::kTooLarge;
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) return Result::kOk;
      if (inflateReset(&z) != Z_OK) return Result::kCorrupt;  // another gzip member follows
      continue;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0) return Result::kTruncated;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return Result::kCorrupt;
  }
}

}  // namespace ingestd::net
