#include "reliability/retry.h"

#include <algorithm>

namespace ingestd::reliability {

RetryPolicy::RetryPolicy(const config::RetryConfig& config, std::mt19937_64& random)
    : config_(config), random_(random) {}

void RetryPolicy::start(int64_t now_ns) {
  started_ns_ = now_ns;
  attempts_ = 0;
  limit_ = Limit::kNone;
}

int64_t RetryPolicy::cap(uint64_t n) const {
  if (config_.initial_ns <= 0) return 0;
  // In double, so that a long run of growth saturates at max instead of overflowing.
  double wait = static_cast<double>(config_.initial_ns);
  for (uint64_t i = 0; i < n && wait < static_cast<double>(config_.max_ns); ++i)
    wait *= config_.multiplier;
  return std::min(config_.max_ns, static_cast<int64_t>(std::min(wait, 9.0e18)));
}

bool RetryPolicy::next(int64_t now_ns, int64_t& wait_ns) {
  uint64_t n = attempts_++;
  if (config_.max_attempts != 0 && attempts_ >= config_.max_attempts) {
    limit_ = Limit::kAttempts;
    return false;
  }
  int64_t cap_ns = cap(n);
  wait_ns = cap_ns;
  if (config_.jitter == config::Jitter::kFull && cap_ns > 0)
    wait_ns = std::uniform_int_distribution<int64_t>(0, cap_ns)(random_);
  if (config_.max_elapsed_ns != 0 && now_ns + wait_ns - started_ns_ > config_.max_elapsed_ns) {
    limit_ = Limit::kElapsed;
    return false;
  }
  return true;
}

}  // namespace ingestd::reliability
