#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "config/config.h"

namespace ingestd::reliability {

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* state_name(BreakerState state);  // "closed", "open", "half_open"

// A circuit breaker in front of one sink: stops calling a peer that keeps failing, and tries it
// again, one probe at a time, after a pause.
//
// Semantics: closed lets every call through. It opens after `failures` consecutive failures, or
// when at least `min_calls` calls ended within the last `window` and the failed share of them is
// >= `failure_ratio`. Open lets nothing through until `open_for` has passed since it opened; the
// first allow() after that turns it half-open. Half-open lets at most `half_open_probes` calls
// through at once: the first probe to succeed closes it (the window and the count start afresh),
// the first to fail opens it again for another `open_for`. A result that arrives while open (a
// call let through before it opened) is ignored.
//
// Callers ask allow() before each call and report its end with record(); while allow() says no,
// wait_ns() says how long to wait before asking again. Every transition calls the callback given
// at construction with the old state, the new state and the reason, under the breaker's lock: the
// callback may log and count but must not call back into the breaker.
//
// Time is the injected clock's monotonic_ns, read only through the `now_ns` arguments.
// Thread-safe (one mutex; cost per call, never per event): the workers of one sink share it.
// Memory: one entry per call that ended within `window`, only while failure_ratio is on.
class CircuitBreaker {
 public:
  using OnChange = std::function<void(BreakerState from, BreakerState to, const std::string& why)>;

  // `min_calls`: calls within the window before the failure ratio counts.
  CircuitBreaker(const config::BreakerConfig& config, OnChange on_change,
                 uint64_t min_calls = kMinCalls);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // May a call start now? Turns open into half-open once open_for has passed.
  bool allow(int64_t now_ns);
  // The end of a call that allow() let through.
  void record(bool success, int64_t now_ns);
  // While allow() says no: how long until asking again makes sense (open: until open_for ends;
  // half-open with every probe out: a short poll, kProbePollNs at most).
  int64_t wait_ns(int64_t now_ns) const;
  BreakerState state() const;

  static constexpr int64_t kProbePollNs = 100'000'000;
  static constexpr uint64_t kMinCalls = 10;

 private:
  void change(BreakerState to, int64_t now_ns, const std::string& why);
  void prune(int64_t now_ns);

  const config::BreakerConfig config_;
  const uint64_t min_calls_;
  OnChange on_change_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  int64_t opened_ns_ = 0;
  uint64_t consecutive_ = 0;
  uint64_t probes_out_ = 0;
  struct Call {
    int64_t end_ns;
    bool failed;
  };
  std::deque<Call> window_;
  uint64_t window_failed_ = 0;
};

}  // namespace ingestd::reliability
