#include "reliability/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace ingestd::reliability {

TokenBucket::TokenBucket(uint64_t rate_per_s, uint64_t burst)
    : rate_per_ns_(static_cast<double>(std::max<uint64_t>(rate_per_s, 1)) / 1e9),
      burst_(static_cast<double>(std::max<uint64_t>(burst, 1))),
      tokens_(burst_) {}

int64_t TokenBucket::wait_ns(uint64_t n, int64_t now_ns) {
  if (started_ && now_ns > last_ns_)
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ns - last_ns_) * rate_per_ns_);
  if (!started_ || now_ns > last_ns_) last_ns_ = now_ns;
  started_ = true;
  double need = std::min(static_cast<double>(n), burst_);
  if (tokens_ >= need) {
    tokens_ -= static_cast<double>(n);
    return 0;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((need - tokens_) / rate_per_ns_)));
}

void TokenBucket::refund(uint64_t n) {
  tokens_ = std::min(burst_, tokens_ + static_cast<double>(n));
}

}  // namespace ingestd::reliability
