// Decompressing HTTP bodies (Content-Encoding: gzip) with a limit, for the HTTP plugins: the
// source's request bodies and the Prometheus scraper's answers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ingestd::net {

// Decompresses gzip data (RFC 1952; several members one after another are one body) with a
// limit on the decompressed size, so that a small body cannot expand without bound (a gzip bomb).
// The output grows in steps of at most 64 KiB and decompression stops as soon as the limit is
// passed. Keep one per connection or loop: the zlib state and the output buffer are reused.
// Not thread-safe.
class Gunzip {
 public:
  enum class Result { kOk, kTooLarge, kCorrupt, kTruncated };

  Gunzip();
  ~Gunzip();
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;

  // Decompresses `in` into `out` (replaced; its capacity kept), at most `limit` bytes.
  Result inflate(std::string_view in, uint64_t limit, std::string& out);

 private:
  struct State;
  State* state_ = nullptr;  // made on first use
};

}  // namespace ingestd::net
