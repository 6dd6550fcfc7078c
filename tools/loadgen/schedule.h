// ingestd-loadgen: which request goes next and when.
#pragma once

#include <atomic>
#include <cstdint>

namespace ingestd::loadgen {

// Hands out request numbers 0, 1, 2, ... to the connections, paced and bounded.
//
// With a rate R > 0, request k is due at start + k / R seconds (on the caller's monotonic clock,
// never read here), so that the long-run rate is R whatever the latency, and a connection that
// falls behind catches up at once. With R == 0 every request is due at once. The run ends after
// max_requests requests (0: no limit) or, with a duration D > 0, for any request due at or after
// start + D; a run with neither limit goes on until stop() is called.
//
// Thread-safe: several worker threads claim from one Schedule; each number is handed out once.
class Schedule {
 public:
  struct Claim {
    enum Kind { kGo, kWait, kDone } kind;
    uint64_t index = 0;   // kGo: the request's number
    int64_t wait_ns = 0;  // kWait: how long until the next request is due
  };

  Schedule(double rate_per_s, uint64_t max_requests, int64_t duration_ns, int64_t start_ns);

  Claim claim(int64_t now_ns);
  // Ends the run: every later claim() is kDone.
  void stop() { stopped_.store(true, std::memory_order_relaxed); }
  // How many numbers have been handed out.
  uint64_t claimed() const { return next_.load(std::memory_order_relaxed); }
  int64_t start_ns() const { return start_ns_; }
  // When request `index` is due.
  int64_t due_ns(uint64_t index) const;

 private:
  const double ns_per_request_;  // 0: no pacing
  const uint64_t max_requests_;
  const int64_t duration_ns_;
  const int64_t start_ns_;
  std::atomic<uint64_t> next_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace ingestd::loadgen
