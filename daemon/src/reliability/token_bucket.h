#pragma once

#include <cstdint>

namespace ingestd::reliability {

// Paces replay from the spool: `rate_per_s` tokens (events) per second, up to `burst` saved up.
//
// Semantics: the bucket starts full. wait_ns(n, now) takes n tokens and returns 0 when the bucket
// holds at least min(n, burst) of them; otherwise it takes nothing and returns how long until it
// will (the caller holds the batch that long and asks again). A batch bigger than `burst` passes
// once the bucket is full and leaves it in debt, so that the long-run rate stays `rate_per_s`
// whatever the batch sizes.
//
// Time is the caller's monotonic clock (`now_ns`), never read here; a clock that steps back is
// taken as no time passing. Not thread-safe: one bucket per replaying thread, or a lock around it.
class TokenBucket {
 public:
  // rate_per_s >= 1 and burst >= 1 (0 is taken as 1).
  TokenBucket(uint64_t rate_per_s, uint64_t burst);

  int64_t wait_ns(uint64_t n, int64_t now_ns);
  // Gives back n tokens taken by a wait_ns() whose batch was not sent after all (the circuit
  // breaker refused it), so that an outage does not leave the bucket in debt.
  void refund(uint64_t n);

 private:
  const double rate_per_ns_;
  const double burst_;
  double tokens_;  // negative while in debt
  int64_t last_ns_ = 0;
  bool started_ = false;
};

}  // namespace ingestd::reliability
