// source/sse: how long to wait before reconnecting.
#pragma once

#include <cstdint>
#include <functional>

namespace ingestd::plugins::sse {

// The reconnect schedule of one stream.
//
// Semantics: with n failed attempts recorded since the last success, the wait is
// d = min(cap, base * 2^n) shortened by up to
// `jitter` of itself: a uniform value in [d * (1 - jitter), d]. The base is `initial` until the
// server sends `retry:`, then that value (a server asking for more than `max` gets it: the cap is
// max(max, base)). So a retry: value is the longest first wait, and a stream that keeps failing
// backs off up to the cap.
// - failed() records an attempt that did not reach a stream (connect error, non-200, wrong
//   type); succeeded() one that did: the next wait starts again from the base. next_ns() gives
//   a wait from the attempts recorded so far.
// - Randomness comes from `uniform` (values in [0, 1)), so tests give exact sequences.
// Not thread-safe: owned by the connection loop. Never overflows.
class Backoff {
 public:
  struct Config {
    int64_t initial_ns = 1'000'000'000;
    int64_t max_ns = 30'000'000'000;
    double jitter = 0.2;  // 0..1
  };

  Backoff(Config config, std::function<double()> uniform);

  void set_base_ns(int64_t base_ns) { base_ns_ = base_ns; }
  int64_t base_ns() const { return base_ns_; }
  void failed() { ++failures_; }
  void succeeded() { failures_ = 0; }
  uint64_t failures() const { return failures_; }
  // The cap of the wait after `failures` failed attempts, before jitter.
  int64_t cap_ns(uint64_t failures) const;
  int64_t next_ns();

 private:
  Config config_;
  std::function<double()> uniform_;
  int64_t base_ns_;
  uint64_t failures_ = 0;
};

}  // namespace ingestd::plugins::sse
