#include "backoff.h"

#include <algorithm>

namespace ingestd::plugins::sse {

Backoff::Backoff(Config config, std::function<double()> uniform)
    : config_(config), uniform_(std::move(uniform)), base_ns_(config.initial_ns) {}

int64_t Backoff::cap_ns(uint64_t failures) const {
  const int64_t cap = std::max(config_.max_ns, base_ns_);
  int64_t d = std::max<int64_t>(base_ns_, 0);
  for (uint64_t i = 0; i < failures && d < cap; ++i) d = d > cap / 2 ? cap : d * 2;
  return std::min(d, cap);
}

int64_t Backoff::next_ns() {
  const int64_t d = cap_ns(failures_);
  const double jitter = std::clamp(config_.jitter, 0.0, 1.0);
  const double u = std::clamp(uniform_(), 0.0, 1.0);
  return d - static_cast<int64_t>(static_cast<double>(d) * jitter * u);
}

}  // namespace ingestd::plugins::sse
