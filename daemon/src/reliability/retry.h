#pragma once

#include <cstdint>
#include <random>

#include "config/config.h"

namespace ingestd::reliability {

// The retry schedule of one batch: how long to wait before each retry, and when to give up.
//
// Semantics: the n-th wait (n = 0, 1, ...) is capped at cap(n) = min(max, initial * multiplier^n);
// with full jitter it is a uniform random value in [0, cap(n)], without jitter exactly cap(n).
// An attempt is one write of the batch. next() is called after a failed attempt: it returns the
// wait before the next one, or nothing when the limits say stop: `max_attempts` attempts made
// (0: unlimited), or `max_elapsed` passed since start() by the caller's monotonic time (0:
// unlimited; a wait that would end past the limit is not begun). limit() then says which one.
//
// Randomness comes from the engine passed in, so a seeded engine gives exact sequences in tests.
// Not thread-safe: one RetryPolicy per batch being written, owned by the writing thread.
// Never fails: a zero or negative initial gives zero waits; caps never overflow.
class RetryPolicy {
 public:
  enum class Limit { kNone, kAttempts, kElapsed };

  RetryPolicy(const config::RetryConfig& config, std::mt19937_64& random);

  // Begins a batch's schedule at monotonic time `now_ns`.
  void start(int64_t now_ns);
  // After a failed attempt at `now_ns`: true with the wait in `wait_ns`, or false to give up.
  bool next(int64_t now_ns, int64_t& wait_ns);
  uint64_t attempts() const { return attempts_; }  // failed attempts since start()
  Limit limit() const { return limit_; }
  // The cap of the n-th wait: min(max, initial * multiplier^n).
  int64_t cap(uint64_t n) const;

 private:
  const config::RetryConfig& config_;
  std::mt19937_64& random_;
  int64_t started_ns_ = 0;
  uint64_t attempts_ = 0;
  Limit limit_ = Limit::kNone;
};

}  // namespace ingestd::reliability
